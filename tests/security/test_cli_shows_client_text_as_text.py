"""What clients write (key, tenant, file and speaker names, search hits) reaches the
operator's terminal through `scribe` as plain text: no Rich markup is interpreted (a name
like `[/x]` crashed `scribe keys list` with a MarkupError), no emoji code is replaced, and
no escape sequence or control character gets through.

`scribe` runs as a user runs it, a subprocess (tests/cli_env.py), against this module's
real uvicorn gateway (tests/security/conftest.py) and database: `keys list` reads the
database, `jobs`, `speakers list` and `search` ask the gateway with an API key; last, a
server's error message is shown the same way.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings
from tests.cli_env import cli_env
from tests.databases import own_settings
from tests.integration.stored_jobs import wav_bytes
from tests.security.conftest import Gateway, guarded
from tests.security.meetings import embedded_meeting, index_directly
from tests.tenants import Tenant

SCRIBE = [sys.executable, "-m", "cli.main"]
TIMEOUT_S = 120
# Markup, an emoji code, a 7-bit colour escape, a title-setting OSC, an 8-bit CSI (clear
# screen), a bell and a carriage return.
HOSTILE = "[/x] [bold]odd[/bold] :smile: \x1b[31mred\x1b[0m\x1b]0;pwned\x07 \x9b2Jx\x07\r!"
# What the operator reads: the words as written, the terminal's commands gone.
LITERAL = "[/x] [bold]odd[/bold] :smile: red x!"
CONTROLS = ("\x1b", "\x9b", "\x07", "\r", "\x9d")
# An uploaded file name keeps only its printable characters (gateway/http/multipart.py): markup.
UPLOAD_NAME = "[/x] [bold]upload[/bold] :smile:.wav"


@pytest.fixture(scope="module")
def guarded_settings(
    settings: Settings, pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    data_dir = tmp_path_factory.mktemp("sec-cli")
    with own_settings(settings, pg_admin_dsn, data_dir, "sec-cli") as own:
        yield guarded(own, redis_prefix=own.redis_prefix)


async def scribe(
    gateway: Gateway, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`scribe ARGS`, on a wide terminal (a table never wraps a name); with `token`,
    against the gateway (which serves from this event loop: the command runs in a
    thread)."""
    database_url = gateway.settings.database_url
    assert database_url
    env = cli_env(
        SCRIBE_DATABASE_URL=database_url,
        SCRIBE_DATA_DIR=str(Path(gateway.settings.data_dir) / "cli"),
        COLUMNS="500",
    )
    if token is not None:
        env.update(SCRIBE_URL=gateway.url, SCRIBE_API_KEY=token)
    return await asyncio.to_thread(
        subprocess.run,
        [*SCRIBE, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT_S,
    )


def assert_shown_literally(proc: subprocess.CompletedProcess[str], times: int = 1) -> None:
    assert proc.returncode == 0, proc.stderr
    printed = proc.stdout + proc.stderr
    assert "MarkupError" not in printed
    for control in CONTROLS:
        assert control not in printed, (control, printed)
    assert proc.stdout.count(LITERAL) >= times, proc.stdout


async def test_keys_list_prints_a_hostile_key_name_as_written(gateway: Gateway) -> None:
    await gateway.services.auth.create_key(HOSTILE, tenant=f"{HOSTILE} {uuid.uuid4().hex[:6]}")
    proc = await scribe(gateway, "keys", "list")
    assert_shown_literally(proc, times=2)  # the key's name and its tenant's


async def test_jobs_and_speakers_print_hostile_names_as_written(gateway: Gateway) -> None:
    tenant: Tenant = await gateway.tenant()
    async with gateway.client(tenant) as http:
        upload = ("file", (UPLOAD_NAME, wav_bytes(0.5), "audio/wav"))
        resp = await http.post("/v1/jobs", files=[upload])
    assert resp.status_code == 202, resp.text
    # The CLI does not count on the gateway's cleaning of uploaded file names: a stored
    # name with escapes in it is shown the same.
    stored = await embedded_meeting(gateway.services, tenant, ["Hello."], file_name=HOSTILE)
    await gateway.services.speakers.create_speaker(
        name=HOSTILE, model="test", embedding=[0.6, 0.8], clip_uris=[], owner=tenant.id
    )
    jobs = await scribe(gateway, "jobs", token=tenant.token)
    assert_shown_literally(jobs)
    assert stored.job_id in jobs.stdout and resp.json()["id"] in jobs.stdout
    assert UPLOAD_NAME in jobs.stdout
    assert_shown_literally(await scribe(gateway, "speakers", "list", token=tenant.token))


async def test_search_prints_hostile_hits_as_written(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    meeting = await embedded_meeting(
        gateway.services,
        tenant,
        [f"The penguin budget review. {HOSTILE}"],
        file_name=HOSTILE,
    )
    assert await index_directly(gateway.services, meeting, tenant) == 1
    table = await scribe(gateway, "search", "penguin budget", token=tenant.token)
    assert_shown_literally(table)  # the meeting's file name
    # and the passage (whose text search cut into sentences, a carriage return a space)
    assert table.stdout.count(LITERAL[: LITERAL.index(" x!")]) == 2, table.stdout
    as_json = await scribe(gateway, "search", "penguin budget", "--json", token=tenant.token)
    assert as_json.returncode == 0, as_json.stderr
    for control in CONTROLS:
        assert control not in as_json.stdout
    assert meeting.job_id in as_json.stdout


class _HostileErrors(http.server.BaseHTTPRequestHandler):
    """A server that answers every request with an API error whose message is HOSTILE."""

    def do_GET(self) -> None:
        body = json.dumps({"error": {"code": "conflict", "message": HOSTILE}}).encode()
        self.send_response(409)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


async def test_a_servers_error_message_is_shown_as_written() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HostileErrors)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        proc = await asyncio.to_thread(
            subprocess.run,
            [*SCRIBE, "jobs", "--server", url],
            capture_output=True,
            text=True,
            env=cli_env(COLUMNS="500"),
            timeout=TIMEOUT_S,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 1, proc.stderr
    assert "MarkupError" not in proc.stderr
    for control in CONTROLS:
        assert control not in proc.stderr, (control, proc.stderr)
    assert proc.stderr.strip() == f"error: {LITERAL}"
