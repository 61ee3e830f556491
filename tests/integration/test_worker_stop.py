"""Stopping the local system while a stage runs leaves no worker process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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


PARENT = """
import sys, time
from pathlib import Path
from cli.local import WorkerProcess
from core.settings import Settings
worker = WorkerProcess(Settings(), log_file=Path(sys.argv[1]), shutdown_timeout=2)
worker.start()
print(worker.proc.pid, flush=True)
time.sleep(600)
"""


def test_a_killed_parent_takes_its_worker_with_it(
    system_settings: Settings, tmp_path: Path
) -> None:
    """The worker runs in a session of its own, so a SIGKILL of the process that started
    it (`scribe serve`, a test) reaches it only through its parent watch."""
    settings = system_settings.model_copy(
        update={"redis_prefix": f"{system_settings.redis_prefix}-orphan"}
    )
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, **settings.to_env(), "PYTHONPATH": str(repo)}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "worker.log")],
        cwd=repo, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    group = None
    try:
        assert parent.stdout is not None
        group = int(parent.stdout.readline())
        deadline = time.monotonic() + 60
        while len(_live_members(group)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)  # the taskiq parent and its worker child are up
        assert len(_live_members(group)) >= 2, (tmp_path / "worker.log").read_text()
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 30
        while _live_members(group) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _live_members(group) == [], (tmp_path / "worker.log").read_text()[-2000:]
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.wait(10)
        if parent.stdout is not None:
            parent.stdout.close()
        if group is not None and _live_members(group):
            os.killpg(group, signal.SIGKILL)


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
