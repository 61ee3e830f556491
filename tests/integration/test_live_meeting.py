"""A live meeting end to end with a real live worker (Whisper base, CAM++) and stage worker:
`scribe live FILE --server URL` prints captions while the file streams, then the transcript
the whole pipeline made of the recording; the live draft is kept beside it; and with one
meeting's room, a second meeting is refused with a clear 503 while the first runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cli.local import REPO, LocalSystem
from core.settings import LiveSettings, Settings
from tests.databases import own_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def live_system(settings: Settings, pg_admin_dsn: str, tmp_path: Path) -> Iterator[LocalSystem]:
    room = LiveSettings(sessions_per_worker=1)
    with own_settings(settings, pg_admin_dsn, tmp_path, "live-meeting", live=room) as own:
        system = LocalSystem(
            own, live_worker=True, worker_log=tmp_path / "worker.log", shutdown_timeout=10
        )
        system.start()
        try:
            yield system
        finally:
            system.stop()


def _room_announced(url: str, deadline: float) -> None:
    """Wait until the live worker has announced its room: a start is then refused when
    it is full (before, with no live worker known, a meeting starts and waits for one)."""
    while time.monotonic() < deadline:
        first = httpx.post(f"{url}/v1/live", json={})
        if first.status_code == 503:  # a meeting stopped just before is still finishing
            time.sleep(1.0)
            continue
        assert first.status_code == 201, first.text
        second = httpx.post(f"{url}/v1/live", json={})
        for answer in (first, second):
            if answer.status_code == 201:
                httpx.post(f"{url}/v1/live/{answer.json()['job_id']}/stop")
        if second.status_code == 503:
            assert "every live worker is busy (1 of 1 live meetings)" in second.text
            return
        time.sleep(1.0)
    raise AssertionError("the live worker never took a meeting")


def _scribe_live(url: str, audio: Path, deadline: float) -> subprocess.CompletedProcess[str]:
    """`scribe live`, again while the room is still held by a meeting that was stopped
    just before (its worker makes its last pass, then lets the room go)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    while True:
        proc = subprocess.run(
            [sys.executable, "-m", "cli.main", "live", str(audio), "--speed", "1",
             "--server", url],
            capture_output=True, text=True, env=env, timeout=400, check=False,
        )  # fmt: skip
        if "every live worker is busy" not in proc.stderr or time.monotonic() > deadline:
            return proc
        time.sleep(1.0)


def test_scribe_live_prints_captions_then_the_transcript(
    live_system: LocalSystem, audio_dir: Path
) -> None:
    _room_announced(live_system.url, time.monotonic() + 120)
    proc = _scribe_live(live_system.url, audio_dir / "jfk/jfk.flac", time.monotonic() + 120)
    assert proc.returncode == 0, proc.stderr
    captions, _, transcript = proc.stdout.strip().rpartition("\n")
    assert "SPEAKER_1" in captions and "country" in captions.lower()
    assert "ask not what your country can do for you" in transcript.lower()
    assert "11.0 s stored" in proc.stderr
    jobs = httpx.get(f"{live_system.url}/v1/jobs").json()
    done = [j for j in jobs if j["status"] == "succeeded"]
    assert len(done) == 1
    job_id = done[0]["id"]
    # The live worker writes the draft after its last pass, which may end after the graph
    # on a busy machine: waited for, not timed.
    deadline = time.monotonic() + 120
    while True:
        draft = httpx.get(f"{live_system.url}/v1/live/{job_id}/draft")
        if draft.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert draft.status_code == 200, draft.text
    body = draft.json()
    assert body["duration_s"] == pytest.approx(11.0, abs=0.05)
    assert "country" in " ".join(line["text"] for line in body["lines"]).lower()
    artifacts = httpx.get(f"{live_system.url}/v1/jobs/{job_id}/artifacts").json()
    stages = {a["stage"] for a in artifacts}
    assert {"live", "transcribe", "merge"} <= stages  # the draft kept beside the transcript
