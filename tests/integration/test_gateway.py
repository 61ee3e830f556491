"""The gateway against real PostgreSQL, Redis and a file:// store (no worker runs here)."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from core.events import JobEvent
from core.graph import DEFAULT_GRAPH
from core.settings import Settings
from gateway.app import create_app
from gateway.services import Services
from storage.artifacts import upload_key
from tests.integration.stored_jobs import (
    enrolled_speaker,
    fail_stage,
    record_artifact,
    succeed_job,
)
from tests.support import app_client

WAV = "misc/english.wav"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(64)


@pytest.fixture(scope="module")
async def services(settings: Settings) -> AsyncIterator[Services]:
    svc = await Services.connect(settings)
    yield svc
    await svc.close()


@pytest.fixture(scope="module")
async def client(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings, services) as c:
        yield c


@pytest.fixture(scope="module")
def wav(audio_dir: Path) -> bytes:
    return (audio_dir / WAV).read_bytes()


def err(resp: httpx.Response) -> tuple[int, str]:
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"]
    return resp.status_code, body["error"]["code"]


async def upload(
    client: httpx.AsyncClient, data: bytes, filename: str = "meeting.wav", **fields: str
) -> httpx.Response:
    files = {"file": (filename, data, "application/octet-stream")}
    return await client.post("/v1/jobs", files=files, data=fields)


def stored_files(settings: Settings) -> list[Path]:
    return [p for p in Path(settings.storage_root).rglob("*") if p.is_file()]


# ---------------------------------------------------------------- happy path


async def test_upload_creates_job(
    client: httpx.AsyncClient, services: Services, settings: Settings, wav: bytes
) -> None:
    queue = f"{settings.redis_prefix}:queue"
    before = await services.redis.xlen(queue)
    resp = await upload(client, wav, "english.wav", language="en", num_speakers="2")
    assert resp.status_code == 202, resp.text
    body = resp.json()
    job_id = body["id"]
    assert body["status"] == "queued"
    assert resp.headers["location"] == f"/v1/jobs/{job_id}" == body["links"]["self"]
    assert body["links"]["events"].endswith("/events")

    job = await services.jobs.get_job(job_id)
    assert job.filename == "english.wav"
    assert job.size_bytes == len(wav)
    assert job.params.language == "en" and job.params.num_speakers == 2
    key = upload_key(job_id)
    assert job.upload_uri == services.store.uri(key)
    assert job.upload_sha256 == hashlib.sha256(wav).hexdigest()
    assert services.store.sha256(key) == hashlib.sha256(wav).hexdigest()

    events = await services.bus.history(job_id)
    assert [e.type for e in events] == ["job.queued"]
    assert await services.redis.xlen(queue) == before + 1

    got = await client.get(f"/v1/jobs/{job_id}")
    assert got.status_code == 200
    assert got.json()["id"] == job_id
    assert [s["stage"] for s in got.json()["stages"]] == list(DEFAULT_GRAPH.names)
    listed = await client.get("/v1/jobs", params={"limit": 5})
    assert listed.status_code == 200
    assert job_id in [j["id"] for j in listed.json()]


async def test_the_stage_list_carries_each_stage_s_labels(client: httpx.AsyncClient) -> None:
    """The page shows these, in its language: it keeps no table of stage labels itself."""
    listed = (await client.get("/v1/stages")).json()
    assert [s["name"] for s in listed] == list(DEFAULT_GRAPH.names)
    for s in listed:
        decl = DEFAULT_GRAPH[s["name"]]
        assert s["labels"] == decl.labels and set(s["labels"]) == {"en", "fr"}
        assert s["label"] == decl.labels["en"]
    embed = next(s for s in listed if not s["result"])
    assert embed["labels"]["fr"] == "Indexation pour la recherche"


async def test_field_order_does_not_matter(client: httpx.AsyncClient, wav: bytes) -> None:
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            f"Content-Type: audio/wav\r\n\r\n"
        ).encode()
        + wav
        + (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="max_speakers"\r\n\r\n'
            f"3\r\n--{boundary}--\r\n"
        ).encode()
    )
    resp = await client.post(
        "/v1/jobs",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert resp.status_code == 202, resp.text
    job = (await client.get(resp.headers["location"])).json()
    assert job["params"]["max_speakers"] == 3
    assert job["content_type"] == "audio/wav"


async def test_path_traversal_and_unicode_filename(
    client: httpx.AsyncClient, services: Services, settings: Settings, wav: bytes
) -> None:
    for name in ("../../etc/passwd.wav", "réunion ✓ 会议.wav"):
        resp = await upload(client, wav, name)
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["id"]
        job = await services.jobs.get_job(job_id)
        assert job.filename == name  # kept for display, in the database only
        assert services.store.key_of(job.upload_uri) == f"jobs/{job_id}/upload/source"
    for path in stored_files(settings):
        rel = path.relative_to(settings.storage_root).as_posix()
        assert "passwd" not in rel and "réunion" not in rel


# ---------------------------------------------------------------- refused uploads


async def test_empty_file(client: httpx.AsyncClient) -> None:
    assert err(await upload(client, b"")) == (400, "empty_upload")


async def test_one_byte_file(client: httpx.AsyncClient) -> None:
    assert err(await upload(client, b"\x00")) == (415, "unsupported_media")


@pytest.mark.parametrize(
    ("data", "looks_like"),
    [
        (b"WEBVTT\n\nhello, this is not audio at all\n" * 4, "text"),
        (PNG, "PNG image"),
        (ZIP, "ZIP archive"),
    ],
)
async def test_not_media(
    client: httpx.AsyncClient, settings: Settings, data: bytes, looks_like: str
) -> None:
    before = stored_files(settings)
    resp = await upload(client, data, "sneaky.wav")
    assert err(resp) == (415, "unsupported_media")
    assert looks_like in resp.json()["error"]["message"]
    assert stored_files(settings) == before


async def test_content_length_over_limit(
    settings: Settings, services: Services, wav: bytes
) -> None:
    small = settings.model_copy(update={"max_upload_bytes": 1000})
    async with app_client(small, services) as c:
        # Announced size above the limit: refused before the body is read.
        resp = await c.post(
            "/v1/jobs",
            content=b"x" * 10,
            headers={
                "content-type": "multipart/form-data; boundary=x",
                "content-length": str(10 * 1024 * 1024),
            },
        )
        assert err(resp) == (413, "upload_too_large")
        # A real body whose file is over the limit (Content-Length within the framing slack).
        assert err(await upload(c, wav[:5000])) == (413, "upload_too_large")


async def test_streamed_body_over_limit(settings: Settings, services: Services, wav: bytes) -> None:
    small = settings.model_copy(update={"max_upload_bytes": 100_000})
    boundary = "streamb"
    sent: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file";'
            f' filename="big.wav"\r\n\r\n'
        ).encode()
        for i in range(0, len(wav), 16384):  # 240 KB in 16 KiB chunks, no Content-Length
            sent.append(i)
            yield wav[i : i + 16384]
        yield f"\r\n--{boundary}--\r\n".encode()

    before = stored_files(settings)
    async with app_client(small, services) as c:
        resp = await c.post(
            "/v1/jobs",
            content=body(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
    assert "content-length" not in resp.request.headers
    assert err(resp) == (413, "upload_too_large")
    assert stored_files(settings) == before  # the partial object was removed


async def test_missing_file_field(client: httpx.AsyncClient) -> None:
    resp = await client.post("/v1/jobs", files={"language": (None, "en")})
    assert err(resp) == (400, "bad_input")
    assert "'file'" in resp.json()["error"]["message"]


async def test_not_multipart(client: httpx.AsyncClient) -> None:
    resp = await client.post("/v1/jobs", json={"file": "x"})
    assert err(resp) == (400, "bad_input")


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"num_speakers": "-1"}, "num_speakers"),
        ({"num_speakers": "two"}, "num_speakers"),
        ({"min_speakers": "4", "max_speakers": "2"}, "min_speakers"),
        ({"identify_threshold": "3"}, "identify_threshold"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_invalid_params(
    client: httpx.AsyncClient,
    settings: Settings,
    wav: bytes,
    fields: dict[str, str],
    needle: str,
) -> None:
    before = stored_files(settings)
    resp = await upload(client, wav, **fields)
    assert err(resp) == (422, "invalid_request")
    assert needle in resp.json()["error"]["message"]
    assert stored_files(settings) == before


# ---------------------------------------------------------------- lookups and state


async def test_unknown_and_malformed_ids(client: httpx.AsyncClient) -> None:
    for path in (f"/v1/jobs/{uuid.uuid4()}", "/v1/jobs/not-a-uuid", "/v1/jobs/../../etc"):
        assert err(await client.get(path))[0] == 404
    assert err(await client.get(f"/v1/jobs/{uuid.uuid4()}")) == (404, "not_found")
    assert err(await client.get("/v1/jobs/xyz/events")) == (404, "not_found")
    assert err(await client.delete(f"/v1/jobs/{uuid.uuid4()}")) == (404, "not_found")
    assert err(await client.get("/v1/nothing-here")) == (404, "not_found")
    assert err(await client.put("/v1/jobs")) == (405, "method_not_allowed")
    assert err(await client.get("/v1/jobs", params={"limit": 0}))[0] == 422


async def test_result_replay_and_delete(
    client: httpx.AsyncClient, services: Services, wav: bytes
) -> None:
    job_id = (await upload(client, wav)).json()["id"]
    resp = await client.get(f"/v1/jobs/{job_id}/result")
    assert err(resp) == (409, "conflict")
    assert "queued" in resp.json()["error"]["message"]
    assert err(await client.get(f"/v1/jobs/{job_id}/result?format=pdf"))[0] == 422

    resp = await client.post(f"/v1/jobs/{job_id}/stages/translate/replay")
    assert err(resp) == (404, "not_found")
    assert resp.json()["error"]["message"] == (
        f"unknown stage 'translate'; stages are {', '.join(DEFAULT_GRAPH.names)}"
    )
    resp = await client.post(f"/v1/jobs/{job_id}/stages/diarize/replay")
    assert err(resp) == (409, "conflict")
    assert "still running" in resp.json()["error"]["message"]

    # Once failed: the result says where and why; a replay with new params is accepted.
    await fail_stage(services, job_id, "transcribe", "the audio has no speech")
    resp = await client.get(f"/v1/jobs/{job_id}/result")
    assert err(resp) == (409, "conflict")
    assert "transcribe" in resp.json()["error"]["message"]
    assert "no speech" in resp.json()["error"]["message"]

    bad = await client.post(
        f"/v1/jobs/{job_id}/stages/diarize/replay",
        content=b"{nope",
        headers={"content-type": "application/json"},
    )
    assert err(bad) == (422, "invalid_request")
    assert "JSON" in bad.json()["error"]["message"]
    bad = await client.post(
        f"/v1/jobs/{job_id}/stages/diarize/replay", json={"params": {"num_speakers": 0}}
    )
    assert err(bad) == (422, "invalid_request")

    resp = await client.post(
        f"/v1/jobs/{job_id}/stages/diarize/replay", json={"params": {"num_speakers": 3}}
    )
    assert resp.status_code == 202, resp.text
    assert resp.headers["location"] == f"/v1/jobs/{job_id}"
    job = await services.jobs.get_job(job_id)
    assert job.status == "queued" and job.params.num_speakers == 3
    assert [e.type for e in await services.bus.history(job_id)] == ["job.queued", "job.queued"]

    assert (await client.get(f"/v1/jobs/{job_id}/artifacts")).json() == []

    assert (await client.delete(f"/v1/jobs/{job_id}")).status_code == 204
    assert err(await client.get(f"/v1/jobs/{job_id}")) == (404, "not_found")
    assert not services.store.exists(upload_key(job_id))
    assert await services.bus.history(job_id) == []


# ---------------------------------------------------------------- events (SSE)


def parse_sse(text: str) -> list[dict[str, str]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        if fields:
            events.append(fields)
    return events


async def test_events_stream(client: httpx.AsyncClient, services: Services, wav: bytes) -> None:
    job_id = (await upload(client, wav)).json()["id"]
    bus = services.bus
    for stage in ("decode", "diarize"):
        await bus.publish(JobEvent(type="stage.started", job_id=job_id, stage=stage))
        await bus.publish(JobEvent(type="stage.progress", job_id=job_id, stage=stage, progress=0.5))
        await bus.publish(JobEvent(type="stage.finished", job_id=job_id, stage=stage))
    await bus.publish(JobEvent(type="job.succeeded", job_id=job_id))
    await bus.publish(JobEvent(type="stage.started", job_id=job_id, stage="never"))
    stored = await bus.history(job_id)

    resp = await client.get(f"/v1/jobs/{job_id}/events")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    got = parse_sse(resp.text)
    assert [e["event"] for e in got] == [
        "job.queued",
        "stage.started",
        "stage.progress",
        "stage.finished",
        "stage.started",
        "stage.progress",
        "stage.finished",
        "job.succeeded",
    ]
    assert [e["id"] for e in got] == [e.id for e in stored[: len(got)]]
    assert json.loads(got[2]["data"])["progress"] == 0.5
    assert all(json.loads(e["data"])["id"] == e["id"] for e in got)

    # Resume after the fourth event: header or query.
    resumed = await client.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": got[3]["id"]})
    assert [e["id"] for e in parse_sse(resumed.text)] == [e["id"] for e in got[4:]]
    resumed = await client.get(f"/v1/jobs/{job_id}/events", params={"after": got[6]["id"]})
    assert [e["event"] for e in parse_sse(resumed.text)] == ["job.succeeded"]
    bad = await client.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "yesterday"})
    assert err(bad) == (400, "bad_input")

    # A finished job: history replayed, then the stream ends.
    await succeed_job(services, job_id)
    done = await client.get(f"/v1/jobs/{job_id}/events", params={"after": got[6]["id"]})
    assert [e["event"] for e in parse_sse(done.text)] == ["job.succeeded", "stage.started"]


# ---------------------------------------------------------------- misc


async def test_health_docs_and_page(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert (await client.get("/docs")).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    assert "/v1/jobs/{job_id}/events" in spec["paths"]
    page = await client.get("/")
    assert page.status_code == 200 and "<title>Scribe</title>" in page.text
    asset = re.search(r'/_next/static/[^"]+\.js', page.text)
    if asset:  # the built page (scripts/web.sh); without Node.js, / says how to build it
        assert (await client.get(asset.group(0))).status_code == 200


async def test_speakers_list_and_delete_unknown(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/speakers")).json() == []
    assert err(await client.delete(f"/v1/speakers/{uuid.uuid4()}")) == (404, "not_found")
    resp = await client.post("/v1/speakers", files={"name": (None, "Ada")})
    assert err(resp) == (400, "bad_input")
    resp = await client.post(
        "/v1/speakers", files={"name": (None, "Ada"), "files": ("a.png", PNG, "image/png")}
    )
    assert err(resp) == (415, "unsupported_media")


async def test_sse_disconnect_releases_the_follower(
    settings: Settings, services: Services, client: httpx.AsyncClient, wav: bytes
) -> None:
    """Over a real server: a client that goes away leaves no follower behind, and live
    events come through the one shared pattern subscription."""
    import asyncio

    job_id = (await upload(client, wav)).json()["id"]

    def subscribers() -> int:
        return services.bus.live.followers

    async with app_client(settings, services, served=True) as real:
        async with real.stream("GET", f"/v1/jobs/{job_id}/events") as resp:
            lines = resp.aiter_lines()
            async for line in lines:
                if line.startswith("event:"):
                    assert line == "event: job.queued"
                    break
            await bus_publish_started(services, job_id)
            async for line in lines:  # a live event arrives over Pub/Sub
                if line.startswith("event:"):
                    assert line == "event: stage.started"
                    break
            assert subscribers() == 1
            assert await services.redis.pubsub_numpat() >= 1
            # No per-client channel subscription: the fan-out's pattern carries it.
            channel = services.bus.channel(job_id)
            assert (await services.redis.pubsub_numsub(channel))[0][1] == 0
        await real.aclose()  # the client goes away; the server keeps running
        for _ in range(200):
            if subscribers() == 0:
                break
            await asyncio.sleep(0.02)
        assert subscribers() == 0


async def bus_publish_started(services: Services, job_id: str) -> None:
    await services.bus.publish(JobEvent(type="stage.started", job_id=job_id, stage="decode"))


async def test_enroll_speaker_with_a_fake_worker(
    settings: Settings, services: Services, audio_dir: Path
) -> None:
    """POST /v1/speakers kicks `scribe.enroll` by name and waits; a stand-in worker answers."""
    import asyncio

    from taskiq.receiver import Receiver

    from core.errors import StageFailed
    from events.queue import make_broker

    # Own queue prefix, so the stand-in worker never sees the stage messages above.
    spk = settings.model_copy(update={"redis_prefix": f"{settings.redis_prefix}-spk"})
    assert spk.redis_url
    gw = await Services.connect(spk)
    worker = make_broker(spk, spk.redis_url)
    worker.is_worker_process = True
    calls: list[tuple[str, str, list[str]]] = []

    @worker.task(task_name="scribe.enroll")
    async def enroll(
        speaker_id: str,
        name: str,
        clip_keys: list[str],
        governance: dict[str, object],
        max_duration_s: float | None,
    ) -> dict[str, object]:
        calls.append((speaker_id, name, clip_keys))
        for key in clip_keys:
            if len(gw.store.get_bytes(key)) < 100_000:
                raise StageFailed("enroll", f"clip {key.rsplit('-', 1)[1]} is too short")
        return await enrolled_speaker(
            gw, speaker_id, name, clip_keys, governance, model="fake", embedding=[0.1, 0.2]
        )

    await worker.startup()
    stop = asyncio.Event()
    listening = asyncio.create_task(Receiver(worker, run_startup=False).listen(stop))
    try:
        async with app_client(spk, gw) as c:
            clip1 = (audio_dir / "picovoice/eagle/speaker_1_utt_1.wav").read_bytes()
            clip2 = (audio_dir / "picovoice/eagle/speaker_1_utt_2.wav").read_bytes()
            resp = await c.post(
                "/v1/speakers",
                data={"name": "Speaker One"},
                files=[
                    ("files", ("a.wav", clip1, "audio/wav")),
                    ("files", ("b.wav", clip2, "audio/wav")),
                ],
            )
            assert resp.status_code == 201, resp.text
            body = resp.json()
            sid = body["id"]
            assert body["name"] == "Speaker One" and body["num_clips"] == 2
            assert calls[-1] == (
                sid,
                "Speaker One",
                [f"speakers/{sid}/clip-1", f"speakers/{sid}/clip-2"],
            )
            assert gw.store.sha256(f"speakers/{sid}/clip-2") == hashlib.sha256(clip2).hexdigest()
            assert [s["id"] for s in (await c.get("/v1/speakers")).json()] == [sid]

            # The worker refuses a clip: 422 with its message, and the clips are gone.
            short = (audio_dir / "misc/english.wav").read_bytes()[:50_000]
            resp = await c.post(
                "/v1/speakers",
                data={"name": "Shorty"},
                files=[("files", ("s.wav", short, "audio/wav"))],
            )
            assert err(resp) == (422, "stage_failed")
            assert "too short" in resp.json()["error"]["message"]
            bad_id = calls[-1][0]
            assert not gw.store.exists(f"speakers/{bad_id}/clip-1")

            assert (await c.delete(f"/v1/speakers/{sid}")).status_code == 204
            assert not gw.store.exists(f"speakers/{sid}/clip-1")
            assert (await c.get("/v1/speakers")).json() == []
    finally:
        stop.set()
        await asyncio.wait_for(listening, 10)
        await worker.shutdown()
        await gw.close()


async def test_lifespan_opens_and_closes_its_own_services(settings: Settings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        svc = app.state.services
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://scribe"
        ) as c:
            assert (await c.get("/readyz")).json()["checks"] == {"database": "ok", "redis": "ok"}
    assert svc.pool.is_closing()


async def test_result_of_a_succeeded_job(
    client: httpx.AsyncClient, services: Services, wav: bytes
) -> None:
    from core.artifacts import MeetingResult, ResultSegment, ResultSpeaker, ResultWord

    job_id = (await upload(client, wav)).json()["id"]
    result = MeetingResult(
        job_id=job_id,
        duration_s=2.7,
        language="en",
        speakers=[ResultSpeaker(id="S1", talk_time_s=1.5)],
        segments=[
            ResultSegment(
                start=0.5,
                end=2.0,
                speaker="S1",
                text="Hello there.",
                words=[ResultWord(start=0.5, end=2.0, word="Hello", probability=0.9, speaker="S1")],
            )
        ],
    )
    obj = await record_artifact(services, job_id, "merge", "k1", result)
    await succeed_job(services, job_id)

    resp = await client.get(f"/v1/jobs/{job_id}/result")
    assert resp.status_code == 200 and "content-disposition" not in resp.headers
    assert MeetingResult.model_validate_json(resp.text) == result
    for fmt in ("srt", "vtt", "txt"):
        resp = await client.get(f"/v1/jobs/{job_id}/result", params={"format": fmt})
        assert resp.status_code == 200
        assert resp.headers["content-disposition"] == f'attachment; filename="{job_id}.{fmt}"'
        assert "Hello there." in resp.text
    arts = (await client.get(f"/v1/jobs/{job_id}/artifacts")).json()
    assert [(a["stage"], a["sha256"], a["worker"]) for a in arts] == [("merge", obj.sha256, "test")]
