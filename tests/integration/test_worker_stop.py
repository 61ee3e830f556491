"""Stopping the local system while a stage runs leaves no worker process behind."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cli.local import LocalSystem
from core.settings import Settings
from tests.integration.conftest import ScribeAPI


@pytest.mark.slow
def test_stop_during_a_stage_kills_the_whole_worker(
    system_settings: Settings, tmp_path: Path, pyannote_sample: Path
) -> None:
    # Own Redis prefix: the session's worker must not take this job, nor this one theirs.
    settings = system_settings.model_copy(
        update={"redis_prefix": f"{system_settings.redis_prefix}-stop"}
    )
    log = tmp_path / "worker.log"
    system = LocalSystem(settings, worker_log=log, shutdown_timeout=2).start()
    try:
        api = ScribeAPI(system, log)
        job_id = api.upload(pyannote_sample / "sample.wav")
        with api.http.stream("GET", f"/v1/jobs/{job_id}/events", timeout=120) as resp:
            for line in resp.iter_lines():
                if '"type":"stage.started"' in line and '"stage":"diarize"' in line:
                    break
        assert system.worker is not None and system.worker.proc is not None
        group = system.worker.proc.pid
        api.close()
    finally:
        started = time.monotonic()
        system.stop()
    assert time.monotonic() - started < 30
    deadline = time.monotonic() + 5
    while _live_members(group) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _live_members(group) == []


def _live_members(group: int) -> list[int]:
    """Processes of a process group that still run (zombies awaiting reaping excluded)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == group and state != "Z":
            alive.append(int(stat.parent.name))
    return alive
