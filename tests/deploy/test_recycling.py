"""Worker recycling (`--max-tasks-per-child`) neither strands nor repeats a message.

With one task per child, every stage of every job runs in a fresh spawned process: the
child takes one message (xread_count=1, no prefetch), runs it, kicks the next stage,
acknowledges, and exits; taskiq's process manager starts the next child. Two recycled
children share the queue, which also keeps the test's wall time down (each restart costs a
process start, the imports and the model loads).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis

from core.graph import DEFAULT_GRAPH
from tests.deploy.conftest import MakeSettings, running_system, started_per_stage, wait_all

JOBS = 10


def pending_after(redis_url: str, prefix: str, wait_s: float = 20.0) -> list[dict[str, Any]]:
    """The consumer group's pending entries, once they are gone or `wait_s` has passed."""
    r = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            pending: list[dict[str, Any]] = r.xpending_range(
                f"{prefix}:queue", f"{prefix}:workers", min="-", max="+", count=100
            )
            if not pending or time.monotonic() > deadline:
                return pending
            time.sleep(0.2)
    finally:
        r.close()


@pytest.mark.slow
def test_recycle_after_every_task_loses_and_repeats_nothing(
    isolated_settings: MakeSettings, short_audio: Path, tmp_path: Path
) -> None:
    settings = isolated_settings()
    with running_system(settings, tmp_path / "worker.log", workers=2, max_tasks_per_child=1) as (
        system,
        api,
        _,
    ):
        job_ids = [api.upload(short_audio) for _ in range(JOBS)]
        events = wait_all(api, job_ids, timeout_s=600)
        finals = {job_id: evs[-1].type for job_id, evs in events.items()}
        assert finals == dict.fromkeys(job_ids, "job.succeeded")
        for job_id in job_ids:
            # Each stage started once: no redelivery, no duplicate kick.
            # The stream is followed to job.succeeded: the result's stages, each once.
            once = dict.fromkeys(DEFAULT_GRAPH.result_stages, 1)
            assert started_per_stage(events[job_id]) == once, job_id
            artifacts = api.artifacts(job_id)
            assert sorted(a["stage"] for a in artifacts) == sorted(DEFAULT_GRAPH.names)
            assert {a["version"] for a in artifacts} == {1}
            assert api.result(job_id)["segments"]
        # Every stage ran in its own child: as many worker names as tasks.
        workers = {a["worker"] for j in job_ids for a in api.artifacts(j)}
        assert len(workers) == JOBS * len(DEFAULT_GRAPH.names)
        # Nothing left unacknowledged in the consumer group. The last stage publishes
        # job.succeeded from inside the task and taskiq acknowledges after it has saved the
        # result, so the final ack may trail the event by a moment; a stranded message
        # would stay pending until the broker's idle timeout, far beyond this wait.
        assert system.settings.redis_url
        assert pending_after(system.settings.redis_url, system.settings.redis_prefix) == []
        print(f"\nrecycling: {JOBS} jobs, {len(workers)} child processes, all stages once")
