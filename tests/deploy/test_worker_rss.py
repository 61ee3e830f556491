"""A long-lived worker's memory stays flat: after the first job (which loads the models),
the RSS of the worker child process moves less than 10 % over 20 consecutive jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.graph import DEFAULT_GRAPH
from tests.deploy.conftest import (
    MakeSettings,
    running_system,
    started_per_stage,
    vm_rss_kib,
    worker_children,
)

JOBS = 20


@pytest.mark.slow
def test_worker_rss_is_flat_over_20_jobs(
    isolated_settings: MakeSettings, short_audio: Path, tmp_path: Path
) -> None:
    settings = isolated_settings()
    with running_system(settings, tmp_path / "worker.log") as (system, api, _):
        assert system.worker is not None and system.worker.proc is not None
        rss: list[int] = []
        child: int | None = None
        for n in range(JOBS):
            job_id, events = api.run(short_audio, timeout_s=180)
            assert events[-1].type == "job.succeeded", [e.type for e in events]
            # Followed to job.succeeded: each stage of the result once.
            assert started_per_stage(events) == dict.fromkeys(DEFAULT_GRAPH.result_stages, 1)
            # Spawned, not forked: only children started by spawn_main are counted.
            kids = worker_children(system.worker.proc.pid)
            assert len(kids) == 1, kids
            if child is None:
                child = kids[0]
            assert kids == [child], f"the worker child was replaced after job {n + 1}"
            rss.append(vm_rss_kib(child))
        base = rss[0]
        mib = [round(v / 1024) for v in rss]
        print(f"\nworker RSS after each of {JOBS} jobs (MiB): {mib}")
        for n, value in enumerate(rss[1:], 2):
            assert abs(value - base) <= 0.10 * base, f"job {n}: {mib}"
