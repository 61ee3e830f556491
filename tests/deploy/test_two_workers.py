"""Scale-out: two independent worker entries (as two hosts would run them) consume one
queue; jobs spread over both, every stage of every job runs exactly once, and a job's
diarize and transcribe (which only read decode) run at the same time."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.graph import DEFAULT_GRAPH
from tests.deploy.conftest import MakeSettings, running_system, started_per_stage, wait_all

JOBS = 6


@pytest.mark.slow
def test_two_workers_share_one_queue(
    isolated_settings: MakeSettings, short_audio: Path, tmp_path: Path
) -> None:
    settings = isolated_settings()
    with running_system(settings, tmp_path / "worker.log", extra_workers=1) as (_, api, extra):
        assert extra and extra[0].alive()
        job_ids = [api.upload(short_audio) for _ in range(JOBS)]
        events = wait_all(api, job_ids, timeout_s=400)
        per_worker: dict[str, int] = {}
        side_by_side = 0
        for job_id in job_ids:
            assert events[job_id][-1].type == "job.succeeded", job_id
            # The stream is followed to job.succeeded: the result's stages, each once.
            once = dict.fromkeys(DEFAULT_GRAPH.result_stages, 1)
            assert started_per_stage(events[job_id]) == once, job_id
            artifacts = api.artifacts(job_id)
            assert sorted(a["stage"] for a in artifacts) == sorted(DEFAULT_GRAPH.names)
            assert {a["version"] for a in artifacts} == {1}
            stages = api.stage_states(api.job(job_id))
            d, t = stages["diarize"], stages["transcribe"]
            if d["started_at"] < t["finished_at"] and t["started_at"] < d["finished_at"]:
                side_by_side += 1
            for artifact in artifacts:
                # The stage row names the same worker (plus its lease token).
                assert stages[artifact["stage"]]["worker"].startswith(artifact["worker"])
                per_worker[artifact["worker"]] = per_worker.get(artifact["worker"], 0) + 1
        print(f"\ntasks per worker over {JOBS} jobs: {per_worker}")
        print(f"jobs whose diarize and transcribe overlapped: {side_by_side} of {JOBS}")
        assert side_by_side >= 1
        assert len(per_worker) == 2, per_worker
        assert sum(per_worker.values()) == JOBS * len(DEFAULT_GRAPH.names)
