"""`scribe speakers enroll` / `list` with consent and expiry, run as a user runs them (a
subprocess), against a real Scribe that requires consent: gateway, worker process (the real
speaker encoder), PostgreSQL, Redis and file storage, each of this module's own."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.local import LocalSystem
from core.settings import Settings
from tests.cli_env import cli_env
from tests.databases import own_settings
from tests.integration.conftest import log_tail
from tests.support import delete_redis_prefix

REPO = Path(__file__).resolve().parents[2]
SCRIBE = [sys.executable, "-m", "cli.main"]
TIMEOUT_S = 300


@pytest.fixture(scope="module")
def consent_settings(
    settings: Settings, pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """The session settings with a database, queue prefix and storage of this module's
    own, and voiceprints refused without consent."""
    data_dir = tmp_path_factory.mktemp("cli-speakers")
    with own_settings(
        settings, pg_admin_dsn, data_dir, "cli-speakers", voiceprint_require_consent=True
    ) as own:
        yield own


@pytest.fixture(scope="module")
def server(consent_settings: Settings) -> Iterator[str]:
    log = consent_settings.data_dir / "worker.log"
    local = LocalSystem(consent_settings, worker_log=log)
    try:
        local.start()
    except BaseException:
        print(f"worker log (tail):\n{log_tail(log)}")
        raise
    try:
        yield local.url
    finally:
        worker = local.worker.proc if local.worker is not None else None
        try:
            local.stop()
        finally:
            if worker is not None:  # the worker's own process group (see conftest.system)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(worker.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def clips(audio_dir: Path) -> list[Path]:
    # the two longest: enrollment refuses a clip with under 3 s of speech
    utts = sorted((audio_dir / "librispeech" / "367").glob("*.flac"))
    found = sorted(utts, key=lambda p: (-p.stat().st_size, p.name))[:2]
    if len(found) < 2:
        pytest.fail("tests/data/audio/librispeech/367 has fewer than two utterances")
    return found


def scribe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The `scribe` command in a clean environment (none of this shell's SCRIBE_ settings),
    wide enough that tables do not wrap."""
    base = cli_env(COLUMNS="250", **(env or {}))
    return subprocess.run(
        [*SCRIBE, *args], capture_output=True, text=True, cwd=REPO, env=base, timeout=TIMEOUT_S
    )


def speakers_of(url: str) -> list[dict[str, Any]]:
    resp = httpx.get(f"{url}/v1/speakers", timeout=30)
    assert resp.status_code == 200, resp.text
    body: list[dict[str, Any]] = resp.json()
    return body


def by_name(url: str, name: str) -> dict[str, Any]:
    found = [s for s in speakers_of(url) if s["name"] == name]
    assert len(found) == 1, [s["name"] for s in speakers_of(url)]
    return found[0]


def test_enroll_without_consent_prints_the_servers_reason(server: str, clips: list[Path]) -> None:
    paths = [str(c) for c in clips]
    proc = scribe("speakers", "enroll", "Nobody Asked", *paths, "--server", server)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    # The server's own message, whole and readable, then what to do about it.
    message = " ".join(proc.stderr.split())
    assert "refused to enroll Nobody Asked" in message
    assert "consent_by: is required" in message
    assert "the consent of the person it belongs to" in message
    assert "--consent-by NAME" in message
    assert "Nobody Asked" not in [s["name"] for s in speakers_of(server)]


@pytest.mark.slow
def test_enroll_records_consent_and_a_number_of_days(server: str, clips: list[Path]) -> None:
    before = datetime.now(UTC)
    proc = scribe(
        "speakers",
        "enroll",
        "Alice",
        *map(str, clips),
        "--consent-by",
        "Alice Example",
        "--consent-note",
        "signed form 2026-03",
        "--expires",
        "30d",
        "--server",
        server,
    )
    after = datetime.now(UTC)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Enrolled Alice as " in proc.stdout and "(2 clips)" in proc.stdout
    assert "Consent: Alice Example" in proc.stdout

    alice = by_name(server, "Alice")
    assert alice["consent_by"] == "Alice Example"
    assert alice["consent_note"] == "signed form 2026-03"
    assert before <= datetime.fromisoformat(alice["consent_at"]) <= after
    expires = datetime.fromisoformat(alice["expires_at"])
    assert before + timedelta(days=30) <= expires <= after + timedelta(days=30)
    assert alice["source"] == "clips" and alice["num_clips"] == 2

    listing = scribe("speakers", "list", "--server", server)
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if alice["id"] in line)
    assert "Alice Example" in row and before.strftime("%Y-%m-%d") in row
    assert expires.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") in row
    assert "signed form 2026-03" in listing.stdout
    for header in ("consent", "expires"):
        assert header in listing.stdout


@pytest.mark.slow
def test_enroll_until_an_iso_date(server: str, clips: list[Path]) -> None:
    until = date.today() + timedelta(days=400)
    proc = scribe(
        "speakers",
        "enroll",
        "Bob",
        str(clips[0]),
        "--consent-by",
        "Bob",
        "--expires",
        until.isoformat(),
        "--server",
        server,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    bob = by_name(server, "Bob")
    assert datetime.fromisoformat(bob["expires_at"]) == datetime(
        until.year, until.month, until.day, tzinfo=UTC
    )
    assert bob["consent_by"] == "Bob" and bob["consent_note"] is None
    assert f"Expires: {until.isoformat()} 00:00 UTC" in proc.stdout

    listing = scribe("speakers", "list", "--server", server)
    row = next(line for line in listing.stdout.splitlines() if bob["id"] in line)
    assert f"{until.isoformat()} 00:00 UTC" in row


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--consent-by", "Carol", "--expires", "next year"], "neither a number of days"),
        (["--consent-by", "Carol", "--expires", "2020-01-01"], "not in the future"),
        (["--consent-note", "asked in person"], "--consent-note needs --consent-by"),
    ],
)
def test_bad_options_are_refused_before_anything_is_sent(
    server: str, clips: list[Path], args: list[str], says: str
) -> None:
    proc = scribe("speakers", "enroll", "Carol", str(clips[0]), *args, "--server", server)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert says in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr
    assert "Carol" not in [s["name"] for s in speakers_of(server)]


def test_local_mode_refuses_without_consent_too(
    consent_settings: Settings, clips: list[Path], tmp_path: Path
) -> None:
    """Without --server the command starts Scribe itself with this environment's settings;
    the refusal reads the same."""
    assert consent_settings.redis_url and consent_settings.database_url
    prefix = f"{consent_settings.redis_prefix}-local"
    env = {
        "SCRIBE_DATA_DIR": str(tmp_path),
        "SCRIBE_DATABASE_URL": consent_settings.database_url,
        "SCRIBE_REDIS_URL": consent_settings.redis_url,
        "SCRIBE_REDIS_PREFIX": prefix,
        "SCRIBE_VOICEPRINT_REQUIRE_CONSENT": "true",
    }
    try:
        proc = scribe("speakers", "enroll", "Dave", *map(str, clips), env=env)
    finally:
        delete_redis_prefix(consent_settings.redis_url, prefix)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "consent_by: is required" in " ".join(proc.stderr.split())
