"""The CLI explains a server it cannot reach instead of printing a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cli.local import free_port

REPO = Path(__file__).resolve().parents[2]


def test_unreachable_server_gives_a_readable_error() -> None:
    url = f"http://127.0.0.1:{free_port('127.0.0.1')}"  # nothing listens there
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "jobs", "--server", url],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "cannot reach the Scribe server" in proc.stderr
    assert url in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
