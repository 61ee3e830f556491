"""Redis loses its data in the middle of a queue (a restart without persistence, a new
container): the queue's stream, its consumer group, the events, all gone at once, while a
stage runs and other jobs wait. PostgreSQL still says what each job needs; the reaper sends
it again, the worker creates its consumer group again, and every job finishes.

The Redis here is the machine's shared one: only this test's keys are deleted (its prefix,
and taskiq-redis's lock key named after it), never the whole database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import pytest
import redis

from cli.local import LocalSystem
from core.graph import load_graph
from core.settings import Settings
from events.queue import group_name, queue_key
from tests.databases import own_settings
from tests.integration.conftest import ScribeAPI, log_tail

pytestmark = pytest.mark.slow

RECORDINGS = ["jfk/jfk.flac", "fleurs/en/fleurs-en-001.ogg", "misc/stereo_diarization.wav",
              "fleurs/en/fleurs-en-004.ogg"]  # fmt: skip


@pytest.fixture
def loss_settings(settings: Settings, pg_admin_dsn: str, tmp_path: Path) -> Iterator[Settings]:
    # A short grace: a job quiet for this long, with a stage ready and no message for it,
    # lost its message.
    with own_settings(
        settings, pg_admin_dsn, tmp_path, "redis-loss", stall_after_s=5.0, reaper_interval_s=1.0
    ) as own:
        yield own


def forget_everything(settings: Settings) -> list[bytes]:
    """What Redis restarting empty does, to this test's keys only."""
    assert settings.redis_url
    r = redis.Redis.from_url(settings.redis_url)
    try:
        keys = list(r.scan_iter(f"{settings.redis_prefix}:*"))
        keys += list(r.scan_iter(f"autoclaim:{settings.redis_prefix}:*"))
        if keys:
            r.delete(*keys)
        return keys
    finally:
        r.close()


def undelivered(settings: Settings) -> int:
    """Messages in the queue that no worker has read yet."""
    assert settings.redis_url
    r = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        queue, group = queue_key(settings), group_name(settings)
        last = next(g["last-delivered-id"] for g in r.xinfo_groups(queue) if g["name"] == group)
        entries: Any = r.xrange(queue, min=f"({last}", max="+")
        return len(entries)
    finally:
        r.close()


async def stage_rows(settings: Settings) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return list(
            await conn.fetch(
                "SELECT j.id, j.status AS job_status, s.stage, s.status, s.attempts"
                " FROM jobs j JOIN job_stages s ON s.job_id = j.id ORDER BY j.id, s.stage"
            )
        )
    finally:
        await conn.close()


def test_every_job_finishes_after_redis_loses_the_queue(
    loss_settings: Settings, audio_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    with LocalSystem(loss_settings, worker_log=log, shutdown_timeout=3) as system:
        api = ScribeAPI(system, log)
        try:
            jobs = [api.upload(audio_dir / name) for name in RECORDINGS]
            # Mid-queue: the first job's stage after decode runs, the other jobs wait.
            deadline = time.monotonic() + 240
            while True:
                states = api.stage_states(api.job(jobs[0]))
                if any(s["status"] == "running" for n, s in states.items() if n != "decode"):
                    break
                assert time.monotonic() < deadline, log_tail(log)
                time.sleep(0.1)
            assert undelivered(loss_settings), "no message was left waiting in the queue"
            lost = forget_everything(loss_settings)
            assert any(k.endswith(b":queue") for k in lost), lost

            deadline = time.monotonic() + 300
            while True:
                statuses = [api.job(j)["status"] for j in jobs]
                if all(s in ("succeeded", "failed") for s in statuses):
                    break
                assert system.worker is not None and system.worker.alive(), log_tail(log)
                assert time.monotonic() < deadline, f"{statuses}\n{log_tail(log)}"
                time.sleep(0.5)
            assert statuses == ["succeeded"] * len(jobs), log_tail(log)
            for job_id in jobs:
                assert api.result(job_id)["segments"] is not None

            # Lost again while the worker waits on the queue; the next upload re-creates
            # the stream (without the group) and must be read all the same, by the same
            # worker process, without the reaper having to send it again.
            assert system.worker is not None and system.worker.proc is not None
            children = psutil.Process(system.worker.proc.pid).children()
            forget_everything(loss_settings)
            late = api.upload(audio_dir / RECORDINGS[0])
            jobs.append(late)
            deadline = time.monotonic() + 240
            while api.job(late)["status"] not in ("succeeded", "failed"):
                assert time.monotonic() < deadline, log_tail(log)
                time.sleep(0.5)
            assert api.job(late)["status"] == "succeeded", log_tail(log)
            assert psutil.Process(system.worker.proc.pid).children() == children
        finally:
            api.close()
    rows = asyncio.run(stage_rows(loss_settings))
    # Each stage ran once: a second run would have taken the lease once more (attempts
    # counts the grants), and a message sent again while the stage ran found it leased and
    # did not run it. (Stages after the result may still be on their way.)
    result_stages = set(load_graph(loss_settings.stage_graph).result_stages)
    assert [r for r in rows if r["stage"] in result_stages
            and (r["attempts"] != 1 or r["status"] != "succeeded")] == []  # fmt: skip
    assert [r for r in rows if r["attempts"] > 1] == []
    text = log.read_text(errors="replace")
    assert "creating it again" in text  # the worker survived the group's loss
    assert "queueing it again" in text  # and the reaper sent what was lost the first time
    assert f"job {late}: stalled" not in text
