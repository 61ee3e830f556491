"""Nothing Scribe writes to Redis is a pickle: queue messages, task results (an enrollment's
speaker, a stage's answer, an error) and events are JSON, so whoever can write to Redis
cannot make the gateway or a worker run code by having it read a value back.

Two runs, each on a database, Redis prefix and store of its own, scanned key by key
afterwards: a real uvicorn gateway with a stand-in enrollment worker (no model: an accepted
and a refused enrollment, and a job left in the queue), and, marked slow, a whole Scribe
(gateway and real worker process, real models) running a job and an enrollment end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from taskiq.receiver import Receiver

from cli.local import LocalSystem
from core.errors import BadInput
from core.settings import Settings
from events.queue import make_broker
from tests.databases import own_settings
from tests.integration.conftest import log_tail
from tests.integration.stored_jobs import EMBEDDING, MODEL, enrolled_speaker, wav_bytes
from tests.security.conftest import Gateway, guarded

PICKLE_OPCODE = b"\x80"  # every pickle of protocol 2 and above starts with PROTO


def values_of(r: Any, key: bytes) -> list[bytes]:
    """Every value the key holds: a string's, a stream's entry fields', a hash's, a
    list's or a set's members."""
    kind = r.type(key).decode()
    if kind == "string":
        value = r.get(key)
        return [value] if value is not None else []
    if kind == "stream":
        return [v for _, fields in r.xrange(key) for v in fields.values()]
    if kind == "hash":
        return list(r.hgetall(key).values())
    if kind == "list":
        return list(r.lrange(key, 0, -1))
    if kind == "set":
        return list(r.smembers(key))
    if kind == "zset":
        return list(r.zrange(key, 0, -1))
    raise AssertionError(f"{key!r}: a Redis {kind}, which Scribe does not write")


def redis_report(url: str, prefix: str) -> dict[str, list[bytes]]:
    """The values under the prefix (and taskiq-redis's autoclaim locks of it), by key."""
    r = redis.Redis.from_url(url)
    try:
        keys = sorted(set(r.scan_iter(f"{prefix}*")) | set(r.scan_iter(f"autoclaim:{prefix}*")))
        return {key.decode(): values_of(r, key) for key in keys}
    finally:
        r.close()


def not_json(report: dict[str, list[bytes]]) -> list[str]:
    """Each value that is a pickle or does not parse as JSON, named by its key."""
    bad: list[str] = []
    for key, values in report.items():
        for value in values:
            if value.startswith(PICKLE_OPCODE):
                bad.append(f"{key}: a pickle: {value[:40]!r}")
                continue
            try:
                json.loads(value)
            except ValueError:
                bad.append(f"{key}: not JSON: {value[:40]!r}")
    return bad


def results_in(report: dict[str, list[bytes]], prefix: str) -> list[dict[str, Any]]:
    """The task results the report holds, parsed."""
    results = [k for k in report if k.startswith(f"{prefix}:results:")]
    return [json.loads(report[k][0]) for k in results if not k.endswith("__progress")]


# ---------------------------------------------------------------- a stand-in worker


@pytest.fixture(scope="module")
def guarded_settings(
    settings: Settings, pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    data_dir = tmp_path_factory.mktemp("sec-redis")
    with own_settings(settings, pg_admin_dsn, data_dir, "sec-redis") as own:
        yield guarded(own, redis_prefix=own.redis_prefix)


@pytest.fixture(scope="module")
async def stand_in_worker(gateway: Gateway) -> AsyncIterator[None]:
    """`scribe.enroll` answered by the module's broker, as a worker would: a speaker for
    most names, a refusal (BadInput) for one starting with 'Refused'."""
    settings, services = gateway.settings, gateway.services
    assert settings.redis_url
    broker = make_broker(settings, settings.redis_url)
    broker.is_worker_process = True

    @broker.task(task_name="scribe.enroll")
    async def enroll(
        speaker_id: str,
        name: str,
        clip_keys: list[str],
        governance: dict[str, object],
        max_duration_s: float | None,
    ) -> dict[str, object]:
        if name.startswith("Refused"):
            raise BadInput("clip 1: the file is not a readable audio or video file")
        return await enrolled_speaker(
            services, speaker_id, name, clip_keys, governance, model=MODEL, embedding=EMBEDDING
        )

    await broker.startup()
    stop = asyncio.Event()
    listening = asyncio.create_task(Receiver(broker, run_startup=False).listen(stop))
    yield
    stop.set()
    await asyncio.wait_for(listening, 10)
    await broker.shutdown()


async def test_queue_messages_results_and_events_are_json(
    gateway: Gateway, stand_in_worker: None
) -> None:
    tenant = await gateway.tenant()
    clip = ("files", ("clip.wav", wav_bytes(0.5), "audio/wav"))
    async with gateway.client(tenant) as http:
        accepted = await http.post("/v1/speakers", data={"name": "Ada"}, files=[clip])
        assert accepted.status_code == 201, accepted.text
        refused = await http.post("/v1/speakers", data={"name": "Refused Bo"}, files=[clip])
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["message"] == (
            "clip 1: the file is not a readable audio or video file"
        )
        upload = ("file", ("meeting.wav", wav_bytes(0.5), "audio/wav"))
        job = await http.post("/v1/jobs", files=[upload])
        assert job.status_code == 202, job.text
    settings = gateway.settings
    assert settings.redis_url
    report = redis_report(settings.redis_url, settings.redis_prefix)
    assert not_json(report) == []
    results = results_in(report, settings.redis_prefix)
    assert sorted(r["is_err"] for r in results) == [False, True], results
    speaker = next(r["return_value"] for r in results if not r["is_err"])
    assert isinstance(speaker, dict) and speaker["id"] == accepted.json()["id"]
    queue = report[f"{settings.redis_prefix}:queue"]
    assert any(json.loads(m)["task_name"] == "scribe.stage.decode" for m in queue)


# ---------------------------------------------------------------- a whole Scribe, end to end

TIMEOUT_S = 600


@pytest.fixture(scope="module")
def whole_scribe(
    settings: Settings, pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalSystem]:
    data_dir = tmp_path_factory.mktemp("sec-redis-e2e")
    with own_settings(settings, pg_admin_dsn, data_dir, "sec-redis-e2e") as own:
        log = data_dir / "worker.log"
        system = LocalSystem(own, worker_log=log)
        try:
            system.start()
        except BaseException:
            print(f"worker log (tail):\n{log_tail(log)}")
            raise
        try:
            yield system
        finally:
            worker = system.worker.proc if system.worker is not None else None
            try:
                system.stop()
            finally:
                if worker is not None:  # its own process group (tests/integration/conftest.py)
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(worker.pid, signal.SIGKILL)


def wait_until_at_rest(http: httpx.Client, job_id: str, system: LocalSystem) -> dict[str, object]:
    """The job once it has finished and no stage of it is queued or running any more."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        job: dict[str, object] = http.get(f"/v1/jobs/{job_id}").json()
        stages = job["stages"]
        assert isinstance(stages, list)
        if job["status"] in ("succeeded", "failed") and not any(
            s["status"] in ("queued", "running") for s in stages
        ):
            return job
        assert time.monotonic() < deadline, f"job {job_id} still running: {job}"
        assert system.worker is None or system.worker.alive(), "the worker died"
        time.sleep(0.5)


@pytest.mark.slow
def test_a_job_and_an_enrollment_end_to_end_leave_only_json(
    whole_scribe: LocalSystem, audio_dir: Path
) -> None:
    settings = whole_scribe.settings
    # the two longest: enrollment refuses a clip with under 3 s of speech
    utts = sorted((audio_dir / "librispeech" / "367").glob("*.flac"))
    clips = sorted(utts, key=lambda p: (-p.stat().st_size, p.name))[:2]
    assert len(clips) == 2
    with httpx.Client(base_url=whole_scribe.url, timeout=TIMEOUT_S) as http:
        recording = audio_dir / "jfk" / "jfk.flac"
        files = {"file": (recording.name, recording.read_bytes(), "audio/flac")}
        job = http.post("/v1/jobs", files=files)
        assert job.status_code == 202, job.text
        enrolled = http.post(
            "/v1/speakers",
            data={"name": "Speaker 367"},
            files=[("files", (c.name, c.read_bytes(), "audio/flac")) for c in clips],
        )
        worker_log = whole_scribe.settings.data_dir / "worker.log"
        assert enrolled.status_code == 201, f"{enrolled.text}\n{log_tail(worker_log)}"
        done = wait_until_at_rest(http, job.json()["id"], whole_scribe)
        assert done["status"] == "succeeded", done
    assert settings.redis_url
    report = redis_report(settings.redis_url, settings.redis_prefix)
    assert not_json(report) == []
    results = results_in(report, settings.redis_prefix)
    # One result per stage the job ran and one for the enrollment, each JSON.
    assert len(results) > len(done["stages"]), sorted(report)  # type: ignore[arg-type]
    speakers = [r["return_value"] for r in results if isinstance(r["return_value"], dict)]
    assert [s["id"] for s in speakers] == [enrolled.json()["id"]]
