"""Uploads that look like media but cannot be decoded fail at `decode`, in words a person
understands; silence succeeds with an (almost) empty transcript instead of invented text.
"""

from __future__ import annotations

import re
import struct
import subprocess
import wave
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the helpers arrive as fixtures; conftest is not imported at run time
    from tests.integration.conftest import ScribeAPI

pytestmark = pytest.mark.slow

# Python leaking through: exception class names, tracebacks, reprs, the runner's fallback.
PYTHON_TALK = re.compile(
    r"Traceback|\b[A-Z]\w*(Error|Exception)\b|File \"|PosixPath|\bNone\b|internal error"
)


def truncated_flac(audio_dir: Path, tmp: Path) -> tuple[str, bytes]:
    data = (audio_dir / "jfk" / "jfk.flac").read_bytes()
    return "truncated.flac", data[: int(len(data) * 0.3)]


def wav_header_only(audio_dir: Path, tmp: Path) -> tuple[str, bytes]:
    # RIFF/WAVE, a 16 kHz mono 16-bit fmt chunk, then a data chunk that holds nothing.
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 0)
    return "empty.wav", b"RIFF" + struct.pack("<I", len(body)) + body


def video_without_audio(audio_dir: Path, tmp: Path) -> tuple[str, bytes]:
    from stages.decode import find_ffmpeg

    out = tmp / "silent-film.mp4"
    args = "-nostdin -hide_banner -loglevel error -f lavfi"
    args += " -i testsrc=duration=1:size=64x64:rate=10 -an -pix_fmt yuv420p"
    subprocess.run(
        [find_ffmpeg(), *args.split(), str(out)], check=True, timeout=60, capture_output=True
    )
    return out.name, out.read_bytes()


Maker = Callable[[Path, Path], tuple[str, bytes]]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(
            truncated_flac, r"truncated|could not read|damaged|incomplete", id="truncated-flac"
        ),
        pytest.param(wav_header_only, r"empty|no audio|0 s", id="wav-header-only"),
        pytest.param(video_without_audio, r"no audio", id="video-without-audio"),
    ],
)
def test_undecodable_upload_fails_at_decode(
    api: ScribeAPI, audio_dir: Path, tmp_path: Path, make: Maker, expected: str
) -> None:
    filename, data = make(audio_dir, tmp_path)
    # Accepted: the bytes look like media, so sniffing at upload lets them through.
    job_id, events = api.run(data, filename)

    # The stream ends with the failure, said once for the stage and once for the job.
    types = [e.type for e in events]
    assert types[0] == "job.queued"
    assert types[-2:] == ["stage.failed", "job.failed"], types
    assert "stage.finished" not in types
    assert [e.data["stage"] for e in events if e.type == "stage.started"] == ["decode"]
    stage_failed, job_failed = events[-2], events[-1]
    assert stage_failed.data["stage"] == "decode" and job_failed.data["stage"] == "decode"
    message = job_failed.data["message"]
    assert message and stage_failed.data["message"] == message
    assert all(e.id for e in events)

    # A message for a person: says what is wrong, no Python internals.
    assert re.search(expected, message, re.IGNORECASE), message
    assert not PYTHON_TALK.search(message), message
    assert 10 <= len(message) <= 300, message
    assert "/jobs/" not in message and job_id not in message, "server paths leak into it"

    job = api.job(job_id)
    assert job["status"] == "failed"
    assert job["error"] == {"stage": "decode", "message": message}
    states = api.stage_states(job)
    assert states["decode"]["status"] == "failed" and states["decode"]["error"] == message
    assert states["decode"]["attempts"] == 1, "a bad file is not worth retrying"
    for later in ("diarize", "transcribe", "identify", "merge"):  # never started
        assert states[later]["status"] == "pending", states[later]
        assert states[later]["artifact_id"] is None and states[later]["attempts"] == 0
    assert api.artifacts(job_id) == []

    resp = api.http.get(f"/v1/jobs/{job_id}/result")
    assert resp.status_code == 409, resp.text
    error = resp.json()["error"]
    assert error["code"] == "conflict"
    assert "failed" in error["message"] and "decode" in error["message"]
    assert message in error["message"]


def test_silence_gives_an_empty_transcript(api: ScribeAPI, tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x00\x00" * 32000)  # 2 s of digital silence

    job_id, events = api.run(path)
    assert events[-1].type == "job.succeeded", [e.data for e in events[-3:]]
    result = api.result(job_id)
    assert result["duration_s"] == pytest.approx(2.0, abs=0.01)
    words = api.words_of(result)
    assert len(words) <= 2, f"text invented from silence: {[w['word'] for w in words]}"
    assert len(result["segments"]) <= 1, result["segments"]
    txt = api.result_text(job_id, "txt").text
    assert len(txt.split()) <= 6, txt  # at most "[00:00:00] Speaker 1: a b"
