"""Secrets in logs, against `scribe gateway` itself (a process of its own, its access log on
as in production): a job followed over SSE with a stream token (`?token=...`) used to put
the token in the access log, good to whoever read the log for ten minutes. Now no log line
holds a token's or an API key's value; `token=[redacted]` stands in its place."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cli.local import free_port
from core.settings import Settings
from gateway.http import log_redaction
from tests.integration.stored_jobs import wav_bytes
from tests.security.conftest import Gateway
from tests.tenants import Tenant

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def gateway_process(guarded_settings: Settings, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`scribe gateway` on the security tests' database and store (auth on): its URL, and
    the file its output (the access log among it) goes to."""
    port = free_port()
    own = guarded_settings.model_copy(update={"data_dir": tmp_path / "data"})
    env = {**os.environ, **own.to_env(), "PYTHONPATH": str(REPO)}
    log = tmp_path / "gateway.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "gateway", "--host", "127.0.0.1", "--port",
             str(port)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield url, log
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def test_stream_tokens_and_keys_never_reach_the_log(
    gateway_process: tuple[str, Path], alice: Tenant
) -> None:
    url, log = gateway_process
    async with httpx.AsyncClient(base_url=url, headers=alice.headers, timeout=20) as c:
        resp = await c.post("/v1/jobs", files={"file": ("a.wav", wav_bytes(1.0), "audio/wav")})
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["id"]
        resp = await c.post(f"/v1/jobs/{job_id}/events/token")
        token = resp.json()["token"]
    async with httpx.AsyncClient(base_url=url, timeout=20) as anonymous:
        # The page's EventSource: the token in the query.
        async with anonymous.stream("GET", f"/v1/jobs/{job_id}/events?token={token}") as s:
            assert s.status_code == 200
            async for line in s.aiter_lines():
                if line.startswith("event:"):
                    break
        # The player's <audio> (409 here: the job is queued, no worker decodes it).
        audio = await anonymous.get(f"/v1/jobs/{job_id}/audio?token={token}&download=1")
        assert audio.status_code in (200, 409), audio.text
        # A key where it does not belong (a client's mistake) is not kept either.
        await anonymous.get(f"/v1/jobs?api_key={alice.token}")
        await anonymous.get(f"/v1/jobs/{job_id}/events?stream_token={token}")
    time.sleep(0.5)  # the access log line is written once the answer went out
    text = log.read_text(errors="replace")
    assert f"/v1/jobs/{job_id}/events?token=[redacted]" in text, text[-3000:]
    assert "audio?token=[redacted]&download=1" in text, text[-3000:]
    assert "api_key=[redacted]" in text and "stream_token=[redacted]" in text, text[-3000:]
    secret_part = token.split(".")[1]  # the signature: what makes the token good
    for secret in (token, secret_part, alice.token, alice.token[len("scr_") + 8 :]):
        assert secret not in text, f"{secret[:12]}... is in the log"


async def test_the_apps_own_log_lines_are_redacted_too(
    gateway: Gateway, alice: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    """Installed once a server was configured (the `gateway` fixture's), for every record of
    the process, whatever logger or handler it goes through."""
    log_redaction.install()  # again: changes nothing
    with caplog.at_level(logging.INFO):
        logging.getLogger("scribe.gateway").warning(
            "fetching %s with %r", "/v1/jobs/x/audio?token=abc.def", {"auth": "Bearer xyz123"}
        )
        logging.getLogger("uvicorn.error").error(f"key {alice.token} refused")
    text = caplog.text
    assert "token=[redacted]" in text and "abc.def" not in text, text
    assert "Bearer [redacted]" in text and "xyz123" not in text, text
    assert alice.token not in text and "scr_[redacted]" in text, text
