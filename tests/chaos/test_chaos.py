"""The short chaos run: five jobs of real audio, five kill -9 of the worker's process group
at random moments (in a stage, between stages, during an artifact write), a restart after
each. Every job must end succeeded exactly once. `python -m bench.chaos` is the long run."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import Chaos, chaos_settings
from core.settings import Settings

pytestmark = pytest.mark.slow


def test_kill_the_worker_five_times(
    own_settings: Settings, audio_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    chaos = Chaos(
        chaos_settings(own_settings, lease_ttl_s=3.0),
        audio=audio_dir / "misc" / "english.wav",
        # More work than kills: on a fast (or quiet) machine five short jobs could end
        # before the fourth kill had its moment.
        jobs=8,
        kills=5,
        seed=7,
        worker_log=log,
        minutes=2.5,
    )
    report = chaos.run()
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:]) if log.exists() else ""
    summary = f"{report.table()}\n{report.problems}\nworker log:\n{tail}"
    assert report.kills >= 4, summary
    assert report.succeeded == report.jobs == 8, summary
    assert report.lost == report.duplicated == report.stuck == 0, summary
    assert report.problems == [], summary
