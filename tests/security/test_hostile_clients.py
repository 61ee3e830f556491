"""Clients that send too much, too slowly, or not at all, against a real uvicorn gateway
with API keys on (tests/security/conftest.py): each gets a 4xx in the API's error shape,
or its connection closed, within the configured time; none is read into memory first."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
import uvicorn

from gateway.app import create_app
from gateway.http.server import server_config
from tests.security.conftest import (
    HEADER_TIMEOUT_S,
    IDLE_TIMEOUT_S,
    UPLOAD_TIMEOUT_S,
    Gateway,
)
from tests.tenants import Tenant

# Seconds of slack on top of a timeout, for a loaded CI machine.
SLACK_S = 3.0


async def exchange(
    gw: Gateway,
    head: bytes,
    body_chunks: tuple[bytes, ...] | list[bytes] = (),
    *,
    gap_s: float = 0.0,
) -> tuple[bytes, float]:
    """Send `head` (request line and headers), then each chunk `gap_s` apart; return what
    the server answered (until it closed, or 20 s) and when, counted from the head."""
    reader, writer = await asyncio.open_connection(gw.host, gw.port)
    started = time.monotonic()
    answer = b""
    try:
        writer.write(head)
        await writer.drain()

        async def send_body() -> None:
            for chunk in body_chunks:
                await asyncio.sleep(gap_s)
                writer.write(chunk)
                await writer.drain()

        sending = asyncio.create_task(send_body())
        elapsed: float | None = None
        try:
            answer = await asyncio.wait_for(reader.read(65536), timeout=20)
            elapsed = time.monotonic() - started
            while True:  # the rest, until the server closes or goes quiet
                more = await asyncio.wait_for(reader.read(65536), timeout=2)
                if not more:
                    break
                answer += more
        except (TimeoutError, ConnectionError):
            if elapsed is None:
                elapsed = time.monotonic() - started
        finally:
            sending.cancel()
            try:
                await sending
            except (asyncio.CancelledError, ConnectionError):
                pass
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass
    return answer, elapsed


def status_and_error(answer: bytes) -> tuple[int, dict[str, str]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)["error"]


def request_head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: scribe", *headers, "", ""]
    return "\r\n".join(lines).encode()


# ---------------------------------------------------------------- authentication first


async def test_a_huge_body_without_a_key_is_refused_before_it_is_read(gateway: Gateway) -> None:
    head = request_head(
        "POST",
        f"/v1/jobs/{uuid.uuid4()}/corrections",
        "Content-Type: application/json",
        f"Content-Length: {200 * 1024 * 1024}",
    )
    # Only the headers are sent: an answer means nothing of the body was waited for.
    answer, elapsed = await exchange(gateway, head)
    status, error = status_and_error(answer)
    assert (status, error["code"]) == (401, "unauthorized"), answer
    assert "API key is required" in error["message"]
    assert elapsed < IDLE_TIMEOUT_S  # not the idle timeout: the key was checked first


async def test_a_wrong_key_is_refused_before_the_body_is_read(gateway: Gateway) -> None:
    head = request_head(
        "PATCH",
        f"/v1/jobs/{uuid.uuid4()}/speakers/S1",
        "Authorization: Bearer sk-not-a-key",
        "Content-Type: application/json",
        "Content-Length: 100000",
    )
    answer, elapsed = await exchange(gateway, head)
    assert status_and_error(answer)[0] == 401 and elapsed < IDLE_TIMEOUT_S


async def test_an_upload_without_a_key_is_refused_before_it_is_read(gateway: Gateway) -> None:
    head = request_head(
        "POST", "/v1/jobs", "Content-Type: multipart/form-data; boundary=x",
        "Content-Length: 1000000000",
    )  # fmt: skip
    answer, elapsed = await exchange(gateway, head)
    assert status_and_error(answer)[0] == 401 and elapsed < IDLE_TIMEOUT_S


# ---------------------------------------------------------------- body limits


async def test_a_json_body_over_the_limit_is_413_before_reading(
    gateway: Gateway, alice: Tenant
) -> None:
    limit = gateway.settings.max_request_body_bytes
    head = request_head(
        "POST",
        f"/v1/jobs/{uuid.uuid4()}/corrections",
        f"Authorization: Bearer {alice.token}",
        "Content-Type: application/json",
        f"Content-Length: {limit + 1}",
    )
    answer, elapsed = await exchange(gateway, head)
    status, error = status_and_error(answer)
    assert (status, error["code"]) == (413, "body_too_large"), answer
    assert f"{limit / 1024:.1f} KiB limit" in error["message"]  # 256.0 KiB
    assert elapsed < IDLE_TIMEOUT_S


async def test_a_chunked_json_body_is_cut_at_the_limit(gateway: Gateway, alice: Tenant) -> None:
    head = request_head(
        "POST",
        f"/v1/jobs/{uuid.uuid4()}/corrections",
        f"Authorization: Bearer {alice.token}",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked",
    )
    block = 64 * 1024
    chunk = f"{block:x}\r\n".encode() + b" " * block + b"\r\n"
    # 4 MiB if nothing stops it; no Content-Length to refuse it by.
    answer, _ = await exchange(gateway, head, [chunk] * 64)
    status, error = status_and_error(answer)
    assert (status, error["code"]) == (413, "body_too_large"), answer


async def test_a_small_json_body_still_reaches_the_route(gateway: Gateway, alice: Tenant) -> None:
    async with gateway.client(alice) as c:
        resp = await c.patch(f"/v1/jobs/{uuid.uuid4()}/speakers/S1", json={"name": "Ada"})
    assert resp.status_code == 404, resp.text  # the route ran: no such job


async def test_a_form_with_thousands_of_fields_is_refused_briefly(
    gateway: Gateway, alice: Tenant
) -> None:
    fields = {f"field{i:05d}": "x" for i in range(5000)}
    async with gateway.client(alice) as c:
        resp = await c.post("/v1/jobs", data=fields, files={"file": ("a.wav", b"RIFF" * 100)})
    assert resp.status_code == 400, resp.text
    message = resp.json()["error"]["message"]
    assert message == "the form has more than 32 fields"


async def test_a_form_with_large_text_fields_is_refused(gateway: Gateway, alice: Tenant) -> None:
    fields = {f"f{i}": "x" * 15_000 for i in range(10)}  # each under 16 KiB, 150 KB together
    async with gateway.client(alice) as c:
        resp = await c.post("/v1/jobs", data=fields, files={"file": ("a.wav", b"RIFF" * 100)})
    assert resp.status_code == 400, resp.text
    assert "text fields hold more than 64.0 KiB" in resp.json()["error"]["message"]


async def test_many_unknown_fields_are_not_echoed_back(gateway: Gateway, alice: Tenant) -> None:
    params = {f"unknown_param_{i:04d}": 1 for i in range(2000)}
    async with gateway.client(alice) as c:
        resp = await c.post(
            f"/v1/jobs/{uuid.uuid4()}/stages/decode/replay", json={"params": params}
        )
    assert resp.status_code in (404, 422), resp.text
    message = resp.json()["error"]["message"]
    assert len(message) < 1000, message


# ---------------------------------------------------------------- timeouts


async def test_half_sent_headers_are_cut_with_408(gateway: Gateway) -> None:
    answer, elapsed = await exchange(gateway, b"GET /v1/jobs HTTP/1.1\r\nHost: scr")
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert status_and_error(answer)[1]["code"] == "request_timeout"
    assert HEADER_TIMEOUT_S * 0.9 <= elapsed < HEADER_TIMEOUT_S + SLACK_S


async def test_a_silent_connection_is_closed(gateway: Gateway) -> None:
    answer, elapsed = await exchange(gateway, b"")
    assert answer.startswith(b"HTTP/1.1 408") and elapsed < HEADER_TIMEOUT_S + SLACK_S


async def test_headers_sent_slowly_byte_by_byte_are_cut(gateway: Gateway) -> None:
    head = request_head("GET", "/v1/jobs", "X-Padding: " + "a" * 200)
    # One byte every 50 ms: each arrives well within any idle timeout, the whole does not.
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    started = time.monotonic()
    try:
        with pytest.raises((ConnectionError, BrokenPipeError)):  # noqa: PT012
            for byte in head:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.05)
                if reader.at_eof() or time.monotonic() - started > HEADER_TIMEOUT_S + SLACK_S:
                    raise ConnectionError("closed")
        assert time.monotonic() - started < HEADER_TIMEOUT_S + SLACK_S
    finally:
        writer.close()


async def test_a_json_body_shorter_than_its_content_length_times_out(
    gateway: Gateway, alice: Tenant
) -> None:
    head = request_head(
        "POST",
        f"/v1/jobs/{uuid.uuid4()}/corrections",
        f"Authorization: Bearer {alice.token}",
        "Content-Type: application/json",
        "Content-Length: 100",
    )
    answer, elapsed = await exchange(gateway, head, [b'{"kind": '])
    status, error = status_and_error(answer)
    assert (status, error["code"]) == (408, "request_timeout"), answer
    assert "is Content-Length right?" in error["message"]
    assert IDLE_TIMEOUT_S * 0.9 <= elapsed < IDLE_TIMEOUT_S + SLACK_S


def multipart_head(tenant: Tenant, length: int) -> tuple[bytes, bytes]:
    head = request_head(
        "POST",
        "/v1/jobs",
        f"Authorization: Bearer {tenant.token}",
        "Content-Type: multipart/form-data; boundary=xyz",
        f"Content-Length: {length}",
    )
    part = (
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\nRIFF\x00\x00\x00\x00WAVEfmt "
    )
    return head, part


def stored_uploads(gw: Gateway) -> list[str]:
    return sorted(p for p in gw.services.store.fs.find(gw.services.store.root) if "/upload/" in p)


async def test_an_upload_that_stops_is_cut_after_the_idle_timeout(
    gateway: Gateway, alice: Tenant
) -> None:
    before = stored_uploads(gateway)
    head, part = multipart_head(alice, 1_000_000)
    answer, elapsed = await exchange(gateway, head, [part + b"\x00" * 2000])
    status, error = status_and_error(answer)
    assert (status, error["code"]) == (408, "request_timeout"), answer
    assert f"no data received for {IDLE_TIMEOUT_S:g} s" in error["message"]
    assert IDLE_TIMEOUT_S * 0.9 <= elapsed < IDLE_TIMEOUT_S + SLACK_S
    assert stored_uploads(gateway) == before  # nothing half-stored is left


async def test_an_upload_trickling_in_is_cut_at_the_upload_timeout(
    gateway: Gateway, alice: Tenant
) -> None:
    before = stored_uploads(gateway)
    head, part = multipart_head(alice, 1_000_000)
    # A chunk every 0.3 s: never idle for IDLE_TIMEOUT_S, never done either.
    chunks = [part] + [b"\x00" * 10] * int((UPLOAD_TIMEOUT_S + SLACK_S + 2) / 0.3)
    answer, elapsed = await exchange(gateway, head, chunks, gap_s=0.3)
    status, error = status_and_error(answer)
    assert (status, error["code"]) == (408, "request_timeout"), answer
    assert "took too long to arrive" in error["message"]
    assert UPLOAD_TIMEOUT_S * 0.9 <= elapsed < UPLOAD_TIMEOUT_S + SLACK_S
    assert stored_uploads(gateway) == before


async def test_an_open_event_stream_is_not_cut_by_the_body_timeouts(
    gateway: Gateway, alice: Tenant
) -> None:
    """Once a request's body is complete, waiting on the client (an SSE stream waits for
    its disconnect) is not a slow body."""
    async with gateway.client(alice) as c:
        resp = await c.post("/v1/jobs", files={"file": ("a.wav", wav_bytes(1.0))})
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["id"]
        got: list[str] = []
        timeout = httpx.Timeout(20, read=IDLE_TIMEOUT_S * 3)
        with pytest.raises(httpx.ReadTimeout):  # noqa: PT012
            async with c.stream("GET", f"/v1/jobs/{job_id}/events", timeout=timeout) as stream:
                async for line in stream.aiter_lines():
                    got.append(line)
        assert "event: job.queued" in got  # it was open, and stayed open past the timeouts


async def test_connections_past_the_limit_get_503(gateway: Gateway) -> None:
    settings = gateway.settings.model_copy(update={"max_connections": 2, "auth": "off"})
    app = create_app(settings, gateway.services)
    server = uvicorn.Server(
        server_config(
            app, settings, host="127.0.0.1", port=0, log_level="critical", lifespan="off"
        )  # fmt: skip
    )
    serving = asyncio.create_task(server.serve())
    held = []
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        for _ in range(2):
            held.append(await asyncio.open_connection("127.0.0.1", port))
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            resp = await c.get("/healthz")
        assert resp.status_code == 503
    finally:
        for _, writer in held:
            writer.close()
        server.should_exit = True
        await asyncio.wait_for(serving, 15)


def wav_bytes(seconds: float) -> bytes:
    from tests.integration.stored_jobs import wav_bytes as make

    return make(seconds)
