"""`scribe calibrate`, run as a user runs it (a subprocess): the real speaker encoder scores
the utterances of the data directory it is given, and the threshold lands in a real
PostgreSQL, where the identify stage reads it. `python -m bench.calibrate` computes the same
from the same data."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.calibration import CalibrationStore
from storage.db import create_pool, migrate
from tests.cli_env import cli_env
from tests.databases import create_database, database_url, drop_database

REPO = Path(__file__).resolve().parents[2]
SCRIBE = [sys.executable, "-m", "cli.main"]
TIMEOUT_S = 300
UTTERANCES = 4  # per speaker: two to enroll, two to score


@pytest.fixture(scope="module")
def calibration_db(pg_admin_dsn: str) -> Iterator[str]:
    """A database of this module's own: the calibrations table is keyed by model only."""
    name = f"scribe_test_calibrate_{os.getpid()}"
    asyncio.run(create_database(pg_admin_dsn, name))
    yield database_url(pg_admin_dsn, name)
    asyncio.run(drop_database(pg_admin_dsn, name))


@pytest.fixture
async def calibrations(calibration_db: str) -> AsyncIterator[CalibrationStore]:
    pool = await create_pool(calibration_db, max_size=1)
    await migrate(pool)
    yield CalibrationStore(pool)
    await pool.close()


def speaker_dir(audio_dir: Path, root: Path, speakers: list[str]) -> Path:
    """`root` holding the first UTTERANCES utterances of each of `speakers` (links)."""
    for spk in speakers:
        found = sorted((audio_dir / "librispeech" / spk).glob("*.flac"))[:UTTERANCES]
        if len(found) < UTTERANCES:
            pytest.fail(f"librispeech/{spk} has fewer than {UTTERANCES} utterances")
        (root / spk).mkdir(parents=True)
        for f in found:
            (root / spk / f.name).symlink_to(f)
    return root


def run(module: list[str], *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = cli_env(COLUMNS="200", **env)
    return subprocess.run(
        [*module, *args], capture_output=True, text=True, cwd=REPO, env=base, timeout=TIMEOUT_S
    )


async def stored(calibrations: CalibrationStore) -> list[dict[str, Any]]:
    async with calibrations.pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM calibrations ORDER BY model")
    out = []
    for r in rows:
        row = dict(r)
        if isinstance(row["details"], str):
            row["details"] = json.loads(row["details"])
        out.append(row)
    return out


@pytest.mark.slow  # loads the speaker-embedding model
async def test_calibrate_stores_what_the_given_data_yields(
    audio_dir: Path, tmp_path: Path, calibration_db: str, calibrations: CalibrationStore
) -> None:
    env = {"SCRIBE_DATA_DIR": str(tmp_path / "data"), "SCRIBE_DATABASE_URL": calibration_db}
    first = speaker_dir(audio_dir, tmp_path / "first", ["367", "533", "1688"])
    proc = await asyncio.to_thread(
        run, SCRIBE, "calibrate", "--audio", str(first), "-o", str(tmp_path / "a.json"), env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "a.json").read_text())
    details = result["details"]
    # It scored this directory: its three speakers, two test utterances each.
    assert details["speakers"] == ["1688", "367", "533"]
    assert details["test_utterances"] == 6
    assert len(details["scores"]["same"]) == 6 and len(details["scores"]["best_wrong"]) == 6
    assert len(details["scores"]["different"]) == 12
    # The threshold answers the question asked: at most 1 % of the strangers' best wrong
    # scores pass it, and FAR and FRR are what those scores give.
    threshold, same, wrong = (
        result["threshold"],
        details["scores"]["same"],
        details["scores"]["best_wrong"],
    )
    assert result["target_far"] == 0.01 and details["rule"] == "open-set"
    assert result["far"] == sum(x >= threshold for x in wrong) / len(wrong) <= 0.01
    assert result["frr"] == sum(x < threshold for x in same) / len(same)
    assert max(wrong) < threshold  # 1 % of six allows none
    assert f"{threshold:.3f}" in proc.stdout and "Stored" in proc.stdout

    [row] = await stored(calibrations)
    assert row["model"] == result["model"] and row["model"] in proc.stdout
    assert row["threshold"] == pytest.approx(threshold)
    assert row["details"]["speakers"] == details["speakers"]
    # What the identify stage will use for this encoder.
    assert await calibrations.calibrated_threshold(result["model"]) == pytest.approx(threshold)

    # Other speakers, another rule and target: other scores, and the row is replaced.
    second = speaker_dir(audio_dir, tmp_path / "second", ["1998", "2033", "2414"])
    proc = await asyncio.to_thread(
        run,
        SCRIBE,
        "calibrate",
        "--audio",
        str(second),
        "--rule",
        "pairwise",
        "--target-far",
        "0.5",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    [row] = await stored(calibrations)
    assert row["model"] == result["model"]
    assert row["details"]["speakers"] == ["1998", "2033", "2414"]
    assert row["details"]["rule"] == "pairwise" and row["target_far"] == 0.5
    different = row["details"]["scores"]["different"]
    assert row["far"] == sum(x >= row["threshold"] for x in different) / len(different) <= 0.5
    assert row["threshold"] != pytest.approx(threshold)
    assert row["details"]["scores"]["same"] != details["scores"]["same"]

    # bench.calibrate, now calling the same code, gets the same from the first directory.
    proc = await asyncio.to_thread(
        run,
        [sys.executable, "-m", "bench.calibrate"],
        "--audio",
        str(first),
        "--out",
        str(tmp_path / "bench.json"),
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert bench["threshold"] == result["threshold"]
    assert bench["details"]["scores"] == details["scores"]


async def test_too_little_data_is_a_clear_error_and_stores_nothing(
    audio_dir: Path, tmp_path: Path, calibration_db: str, calibrations: CalibrationStore
) -> None:
    async with calibrations.pool.acquire() as conn:
        await conn.execute("DELETE FROM calibrations")
    env = {"SCRIBE_DATA_DIR": str(tmp_path / "data"), "SCRIBE_DATABASE_URL": calibration_db}
    one = speaker_dir(audio_dir, tmp_path / "one", ["367"])
    (one / "533").mkdir()  # a second speaker with too few utterances to score
    (one / "533" / "only.flac").symlink_to(sorted((one / "367").iterdir())[0])
    proc = await asyncio.to_thread(run, SCRIBE, "calibrate", "--audio", str(one), env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    message = " ".join(proc.stderr.split())
    assert "1 usable speaker folder(s)" in message and "at least two" in message
    assert await stored(calibrations) == []


def test_help_says_what_it_does() -> None:
    proc = run(SCRIBE, "calibrate", "--help", env={})
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    for option in ("--audio", "--target-far", "--rule", "--per-speaker", "--dry-run", "--out"):
        assert option in text
    assert "tests/data/audio/librispeech" in text and "SCRIBE_IDENTIFY_THRESHOLD" in text
