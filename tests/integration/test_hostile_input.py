"""Hostile and bad input, as one table: what is sent, and the answer expected.

Every case gets a 4xx with a clear message, or a 202 and then a job that either decodes or
fails at `decode` with a clear reason, never a 500, a hang or a job left running. The
decode stage runs in this process (ffmpeg and PyAV only, no model), with the worker's own
runner, so the answer is the one a worker gives.
"""

from __future__ import annotations

import asyncio
import re
import struct
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from core.settings import Settings
from gateway.services import Services
from tests.integration.stored_jobs import fail_stage
from tests.support import app_client

Send = Callable[[httpx.AsyncClient, "Files"], Awaitable[httpx.Response]]
# Python leaking through: exception class names, tracebacks, reprs.
PYTHON_TALK = re.compile(r"Traceback|\b[A-Z]\w*(Error|Exception)\b|File \"|PosixPath|\bNone\b")


@dataclass(frozen=True)
class Files:
    """Sample bytes the cases send, made once per module."""

    wav: bytes
    mp3: bytes
    flac: bytes
    mp4_no_audio: bytes
    mp3_10h: bytes  # 10 hours of silence, 36 MB
    job_id: str  # a finished (failed) job, for replay cases


@dataclass(frozen=True)
class Case:
    id: str
    send: Send
    status: int
    code: str | None = None  # the error code of a 4xx
    says: str = ""  # a regex the message (or the decode failure) must match
    decode: str | None = None  # for a 202: "ok", or "fail" (the reason matches `says`)


def wav_bytes(seconds: float, *, rate: int = 16000, announce_s: float | None = None) -> bytes:
    """A 16-bit mono WAV of silence; `announce_s` makes the header claim another length."""
    frames = int(seconds * rate)
    data = b"\x00\x00" * frames
    size = int((announce_s if announce_s is not None else seconds) * rate) * 2
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data"
    body += struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", 4 + len(body) - 4 + size - len(data)) + body


def upload(
    data: bytes | Callable[[Files], bytes],
    filename: str = "meeting.wav",
    content_type: str = "application/octet-stream",
    **fields: str,
) -> Send:
    async def send(c: httpx.AsyncClient, f: Files) -> httpx.Response:
        body = data(f) if callable(data) else data
        return await c.post("/v1/jobs", files={"file": (filename, body, content_type)}, data=fields)

    return send


def raw(method: str, path: str | Callable[[Files], str], body: bytes = b"", **headers: str) -> Send:
    async def send(c: httpx.AsyncClient, f: Files) -> httpx.Response:
        url = path(f) if callable(path) else path
        return await c.request(method, url, content=body, headers=headers or None)

    return send


def multipart(body: bytes, boundary: str = "xyz") -> Send:
    return raw(
        "POST", "/v1/jobs", body, **{"content-type": f"multipart/form-data; boundary={boundary}"}
    )


def replay(stage: str, body: bytes, ctype: str = "application/json") -> Send:
    return raw(
        "POST",
        lambda f: f"/v1/jobs/{f.job_id}/stages/{stage}/replay",
        body,
        **{"content-type": ctype},
    )


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64)
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(64)
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + bytes(64)
ELF = b"\x7fELF\x02\x01\x01" + bytes(64)
TEXT = b"Minutes of the meeting: nothing was decided.\n" * 8
HTML = b"<!DOCTYPE html><html><body>not a recording</body></html>" * 4
NUL = f"{uuid.UUID(int=0)}"

CASES: list[Case] = [
    # ---------------------------------------------------------------- the file itself
    Case("empty file", upload(b""), 400, "empty_upload", "empty"),
    Case("1-byte file", upload(b"\x00"), 415, "unsupported_media", "1 byte"),
    Case("text renamed .wav", upload(TEXT, "notes.wav"), 415, "unsupported_media", "text"),
    Case("HTML page", upload(HTML, "page.mp3"), 415, "unsupported_media", "HTML"),
    Case("PNG image", upload(PNG, "photo.wav"), 415, "unsupported_media", "PNG image"),
    Case("JPEG image", upload(JPEG, "photo.m4a"), 415, "unsupported_media", "JPEG image"),
    Case("zip archive", upload(ZIP, "meeting.zip"), 415, "unsupported_media", "ZIP archive"),
    Case("PDF document", upload(PDF, "agenda.wav"), 415, "unsupported_media", "PDF"),
    Case("executable", upload(ELF, "run.wav"), 415, "unsupported_media", "executable"),
    Case(
        "truncated WAV (decodes what is there)",
        upload(lambda f: f.wav[: len(f.wav) // 4], "cut.wav"),
        202,
        decode="ok",
    ),
    Case(
        "truncated MP3",
        upload(lambda f: f.mp3[: len(f.mp3) // 3], "cut.mp3"),
        202,
        says="truncated",
        decode="fail",
    ),
    Case(
        "truncated FLAC",
        upload(lambda f: f.flac[: int(len(f.flac) * 0.3)], "cut.flac"),
        202,
        says="truncated|could not read",
        decode="fail",
    ),
    Case(
        "video without an audio track",
        upload(lambda f: f.mp4_no_audio, "screen.mp4"),
        202,
        says="no audio track",
        decode="fail",
    ),
    Case("0-second audio", upload(wav_bytes(0), "zero.wav"), 202, says="empty|0 s", decode="fail"),
    Case(
        "10-hour silent MP3 (refused after a probe, not decoded)",
        upload(lambda f: f.mp3_10h, "long.mp3"),
        202,
        says=r"lasts 10\.0 h; the limit is 6\.0 h",
        decode="fail",
    ),
    Case(
        "real audio, 'image/png' part type",
        upload(lambda f: f.wav, content_type="image/png"),
        202,
        decode="ok",
    ),
    # ---------------------------------------------------------------- names
    Case("unicode file name", upload(lambda f: f.wav, "réunion ✓ 会议 🎙.wav"), 202, decode="ok"),
    Case("path traversal name", upload(lambda f: f.wav, "../../../etc/passwd"), 202, decode="ok"),
    Case(
        "control characters in name",
        upload(lambda f: f.wav, "a\x01b\x7f\u202e.wav"),
        202,
        decode="ok",
    ),
    Case(
        "very long name", upload(lambda f: f.wav, "x" * 5000 + ".wav"), 400, "bad_input", "header"
    ),
    # ---------------------------------------------------------------- the request framing
    Case(
        "JSON instead of a form",
        raw("POST", "/v1/jobs", b'{"file": "x"}', **{"content-type": "application/json"}),
        400,
        "bad_input",
        "multipart/form-data",
    ),
    Case("no content type", raw("POST", "/v1/jobs", b"RIFF"), 400, "bad_input", "multipart"),
    Case(
        "multipart without a boundary",
        raw("POST", "/v1/jobs", b"--x--", **{"content-type": "multipart/form-data"}),
        400,
        "bad_input",
        "multipart",
    ),
    Case(
        "multipart cut before its end",
        multipart(
            b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            b"\r\nRIFF\x00\x00\x00\x00WAVEfmt "
        ),
        400,
        "bad_input",
        "ended before",
    ),
    Case("garbage multipart", multipart(b"\x00\xff" * 100), 400, "bad_input", "malformed|ended"),
    Case(
        "form without a file",
        raw(
            "POST",
            "/v1/jobs",
            b'--xyz\r\nContent-Disposition: form-data; name="language"\r\n\r\nen\r\n--xyz--\r\n',
            **{"content-type": "multipart/form-data; boundary=xyz"},
        ),
        400,
        "bad_input",
        "'file'",
    ),
    Case(
        "Content-Length not a number",
        raw(
            "POST",
            "/v1/jobs",
            b"",
            **{"content-type": "multipart/form-data; boundary=x", "content-length": "lots"},
        ),
        400,
        "bad_input",
        "Content-Length",
    ),
    # ---------------------------------------------------------------- parameters
    Case(
        "negative speaker count",
        upload(lambda f: f.wav, num_speakers="-2"),
        422,
        "invalid_request",
        "num_speakers",
    ),
    Case(
        "zero speakers",
        upload(lambda f: f.wav, min_speakers="0"),
        422,
        "invalid_request",
        "min_speakers",
    ),
    Case(
        "a million speakers",
        upload(lambda f: f.wav, max_speakers="1000000"),
        422,
        "invalid_request",
        "max_speakers",
    ),
    Case(
        "speaker count not a number",
        upload(lambda f: f.wav, num_speakers="2; DROP TABLE jobs"),
        422,
        "invalid_request",
        "num_speakers",
    ),
    Case(
        "min above max",
        upload(lambda f: f.wav, min_speakers="5", max_speakers="2"),
        422,
        "invalid_request",
        "min_speakers",
    ),
    Case(
        "absurd threshold",
        upload(lambda f: f.wav, identify_threshold="1e9"),
        422,
        "invalid_request",
        "identify_threshold",
    ),
    Case(
        "threshold NaN",
        upload(lambda f: f.wav, identify_threshold="nan"),
        422,
        "invalid_request",
        "identify_threshold",
    ),
    Case(
        "language that is not a code",
        upload(lambda f: f.wav, language="../../etc"),
        422,
        "invalid_request",
        "language",
    ),
    Case(
        "unknown form field",
        upload(lambda f: f.wav, colour="blue"),
        422,
        "invalid_request",
        "colour",
    ),
    # ---------------------------------------------------------------- ids and routes
    Case("unknown job id", raw("GET", f"/v1/jobs/{uuid.uuid4()}"), 404, "not_found", "no job"),
    Case("malformed job id", raw("GET", "/v1/jobs/not-a-uuid"), 404, "not_found", "no such id"),
    Case("traversal as job id", raw("GET", "/v1/jobs/..%2F..%2Fetc%2Fpasswd"), 404, "not_found"),
    Case("NUL-ish job id", raw("GET", f"/v1/jobs/{NUL}%00"), 404, "not_found"),
    Case(
        "result of an unknown job", raw("GET", f"/v1/jobs/{uuid.uuid4()}/result"), 404, "not_found"
    ),
    Case(
        "events of an unknown job", raw("GET", f"/v1/jobs/{uuid.uuid4()}/events"), 404, "not_found"
    ),
    Case("delete an unknown job", raw("DELETE", f"/v1/jobs/{uuid.uuid4()}"), 404, "not_found"),
    Case(
        "result in an unknown format",
        raw("GET", lambda f: f"/v1/jobs/{f.job_id}/result?format=exe"),
        422,
        "invalid_request",
        "format",
    ),
    Case(
        "list with an absurd limit",
        raw("GET", "/v1/jobs?limit=100000000"),
        422,
        "invalid_request",
        "limit",
    ),
    # ---------------------------------------------------------------- replays
    Case(
        "replay of an unknown stage",
        replay("translate", b"{}"),
        404,
        "not_found",
        "stages are decode",
    ),
    Case(
        "replay of an unknown job",
        raw(
            "POST",
            f"/v1/jobs/{uuid.uuid4()}/stages/decode/replay",
            b"{}",
            **{"content-type": "application/json"},
        ),
        404,
        "not_found",
    ),
    Case(
        "replay with malformed JSON",
        replay("diarize", b'{"params": {'),
        422,
        "invalid_request",
        "not valid JSON",
    ),
    Case("replay with a JSON list", replay("diarize", b"[1, 2]"), 422, "invalid_request"),
    Case(
        "replay with params not an object",
        replay("diarize", b'{"params": 5}'),
        422,
        "invalid_request",
        "params",
    ),
    Case(
        "replay with an unknown key",
        replay("diarize", b'{"stage": "merge"}'),
        422,
        "invalid_request",
        "stage",
    ),
    Case(
        "replay with negative speakers",
        replay("diarize", b'{"params": {"num_speakers": -1}}'),
        422,
        "invalid_request",
        "num_speakers",
    ),
    Case(
        "replay with an unknown param",
        replay("diarize", b'{"params": {"beam": 99}}'),
        422,
        "invalid_request",
        "beam",
    ),
]


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
async def services(settings: Settings) -> AsyncIterator[Services]:
    svc = await Services.connect(settings)
    yield svc
    await svc.close()


@pytest.fixture(scope="module")
async def client(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings, services, raise_app_exceptions=False, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
async def files(
    audio_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    services: Services,
    client: httpx.AsyncClient,
) -> Files:
    from stages.decode import find_ffmpeg

    out = tmp_path_factory.mktemp("hostile") / "no-audio.mp4"
    args = "-nostdin -hide_banner -loglevel error -f lavfi"
    args += " -i testsrc=duration=1:size=64x64:rate=10 -an -pix_fmt yuv420p"
    subprocess.run([find_ffmpeg(), *args.split(), str(out)], check=True, timeout=60)
    wav = (audio_dir / "misc" / "english.wav").read_bytes()
    # One frame of silence (MPEG-2.5 layer III, 8 kHz, 8 kbit/s: 72 bytes, 72 ms),
    # repeated: a valid 10-hour MP3 made in no time.
    short = out.with_name("short.mp3")
    args = "-nostdin -hide_banner -loglevel error -f lavfi -i anullsrc=r=8000:cl=mono -t 2"
    args += " -c:a libmp3lame -b:a 8k -write_xing 0 -id3v2_version 0"
    subprocess.run([find_ffmpeg(), *args.split(), str(short)], check=True, timeout=60)
    frame = short.read_bytes()[72 * 5 : 72 * 6]
    assert frame[:2] == b"\xff\xe3", frame[:4].hex()
    resp = await client.post("/v1/jobs", files={"file": ("a.wav", wav)})
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["id"]
    await fail_stage(services, job_id, "transcribe", "made to fail for the replay cases")
    return Files(
        wav=wav,
        mp3=(audio_dir / "misc" / "multilingual.mp3").read_bytes(),
        flac=(audio_dir / "jfk" / "jfk.flac").read_bytes(),
        mp4_no_audio=out.read_bytes(),
        mp3_10h=frame * 500_000,
        job_id=job_id,
    )


@pytest.fixture(scope="module")
async def worker_state(settings: Settings) -> AsyncIterator[object]:
    from stages.runtime import WorkerState

    state = await WorkerState.connect(settings, reaper=False)
    yield state
    await state.close()


# ---------------------------------------------------------------- the table


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_hostile_input(
    case: Case,
    client: httpx.AsyncClient,
    files: Files,
    services: Services,
    worker_state: object,
) -> None:
    resp = await asyncio.wait_for(case.send(client, files), timeout=30)
    assert resp.status_code == case.status, resp.text
    if case.status >= 400:
        body = resp.json()
        assert set(body) == {"error"}, body
        assert body["error"]["code"] == case.code, body
        message = body["error"]["message"]
        assert message and re.search(case.says, message, re.IGNORECASE), message
        assert not PYTHON_TALK.search(message), message
        return
    job_id = resp.json()["id"]
    job = await services.jobs.get_job(job_id)
    assert services.store.key_of(job.upload_uri) == f"jobs/{job_id}/upload/source"
    assert case.decode in ("ok", "fail")
    await decode_outcome(worker_state, job_id, case)


async def decode_outcome(state: object, job_id: str, case: Case) -> None:
    """Run `decode` as a worker would; check the job's state afterwards."""
    from stages.runtime import WorkerState
    from stages.tasks import run_stage

    assert isinstance(state, WorkerState)
    try:
        # Quick even for the 10-hour file: it is probed, not decoded.
        await asyncio.wait_for(run_stage(state, "decode", job_id), timeout=20)
        raised = None
    except Exception as exc:
        raised = exc
    job = await state.jobs.get_job(job_id)
    decode = job.stages[0]
    if case.decode == "ok":
        assert raised is None, raised
        assert decode.status == "succeeded" and job.status == "running"
        assert job.duration_s and job.duration_s > 0
        return
    assert raised is not None
    assert job.status == "failed" and decode.status == "failed", job
    assert job.error is not None and job.error.stage == "decode"
    message = job.error.message
    assert re.search(case.says, message, re.IGNORECASE), message
    assert not PYTHON_TALK.search(message), message
    assert decode.attempts == 1, "a bad file is not retried"
    assert all(s.status == "pending" for s in job.stages[1:]), job.stages
    history = [e.type for e in await state.bus.history(job_id)]
    assert history.count("job.failed") == 1 and history[-1] == "job.failed", history


async def test_duration_limit_on_real_audio(
    settings: Settings, services: Services, worker_state: object, files: Files
) -> None:
    """The limit holds for a real recording too, not only for a header that announces it."""
    from stages.runtime import WorkerState

    assert isinstance(worker_state, WorkerState)
    short = settings.model_copy(update={"max_duration_s": 2.0})
    async with app_client(short, services) as c:
        resp = await c.post("/v1/jobs", files={"file": ("a.wav", wav_bytes(3.0))})
    assert resp.status_code == 202
    limited = WorkerState(**{**worker_state.__dict__, "settings": short})
    case = Case("x", upload(b""), 202, says=r"lasts 3\.0 s; the limit is 2\.0 s", decode="fail")
    await decode_outcome(limited, resp.json()["id"], case)


async def test_oversize_upload_is_refused_without_reading_it(
    settings: Settings, services: Services
) -> None:
    small = settings.model_copy(update={"max_upload_bytes": 1_000_000})
    pulled: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        for i in range(4096):  # 4 GiB if anyone read it all
            pulled.append(i)
            yield b"\x00" * (1 << 20)

    async with app_client(small, services) as c:
        announced = await c.post(
            "/v1/jobs",
            content=body(),
            headers={
                "content-type": "multipart/form-data; boundary=x",
                "content-length": str(4096 << 20),
            },
        )
        assert announced.status_code == 413, announced.text
        assert announced.json()["error"]["code"] == "upload_too_large"
        assert len(pulled) <= 1, f"{len(pulled)} MiB were read before refusing"

        pulled.clear()

        async def chunked() -> AsyncIterator[bytes]:
            yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
            yield wav_bytes(0.1)
            async for chunk in body():
                yield chunk

        streamed = await c.post(
            "/v1/jobs",
            content=chunked(),
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
        assert streamed.status_code == 413, streamed.text
        assert len(pulled) <= 3, f"{len(pulled)} MiB were read before refusing"


async def test_concurrent_replays_of_the_same_stage(
    client: httpx.AsyncClient, services: Services, files: Files
) -> None:
    resp = await client.post("/v1/jobs", files={"file": ("a.wav", files.wav)})
    job_id = resp.json()["id"]
    await fail_stage(services, job_id, "diarize", "made to fail")
    answers = await asyncio.gather(
        *(client.post(f"/v1/jobs/{job_id}/stages/diarize/replay", json={}) for _ in range(6))
    )
    codes = sorted(r.status_code for r in answers)
    assert codes == [202, 409, 409, 409, 409, 409], [r.text for r in answers]
    history = [e.type for e in await services.bus.history(job_id)]
    assert history.count("job.queued") == 2  # the upload's, and one replay's
    job = await services.jobs.get_job(job_id)
    assert job.status == "queued"
    # Queued once: diarize and the stages that read it (transcribe is not among them).
    queued = [s.stage for s in job.stages if s.status == "queued"]
    assert queued == list(services.graph.downstream("diarize"))
