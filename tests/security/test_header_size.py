"""Request lines and headers too large, against the real uvicorn gateway of
tests/security/conftest.py: httptools grows them by concatenation for as long as they come
(10 s of header timeout is plenty of megabytes on loopback). Past `max_header_bytes` the
gateway answers 431 and closes, at once, and serves other clients as before."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx

from core.units import human_bytes
from tests.security.conftest import HEADER_TIMEOUT_S, Gateway
from tests.security.test_hostile_clients import status_and_error


async def send_and_answer(gw: Gateway, data: bytes, piece: int = 16 * 1024) -> tuple[bytes, float]:
    """`data` written in pieces while the answer is read; the answer and how long it took.
    The gateway may close before all of it went out: that is the point."""
    reader, writer = await asyncio.open_connection(gw.host, gw.port)
    started = time.monotonic()

    async def send() -> None:
        with contextlib.suppress(ConnectionError):
            for i in range(0, len(data), piece):
                writer.write(data[i : i + piece])
                await writer.drain()

    sending = asyncio.create_task(send())
    try:
        answer = await asyncio.wait_for(reader.read(65536), timeout=HEADER_TIMEOUT_S + 5)
        took = time.monotonic() - started
        with contextlib.suppress(ConnectionError, TimeoutError):
            while more := await asyncio.wait_for(reader.read(65536), timeout=2):
                answer += more
        return answer, took
    finally:
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)


async def test_a_megabyte_of_header_is_431_at_once(gateway: Gateway) -> None:
    limit = gateway.settings.max_header_bytes
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 1024 * 1024
    answer, took = await send_and_answer(gateway, head)  # never ends its headers
    status, error = status_and_error(answer)
    assert status == 431, answer[:200]
    assert error["code"] == "headers_too_large"
    assert error["message"] == (
        f"the request line and headers are larger than the {human_bytes(limit)} limit"
    )
    assert took < HEADER_TIMEOUT_S / 2, took  # not the header timeout: the size
    assert b"connection: close" in answer.lower()


async def test_a_huge_request_line_is_431(gateway: Gateway) -> None:
    line = b"GET /healthz?" + b"q" * (2 * 1024 * 1024) + b" HTTP/1.1\r\n"
    answer, took = await send_and_answer(gateway, line)
    assert status_and_error(answer)[0] == 431 and took < HEADER_TIMEOUT_S / 2


async def test_many_small_headers_count_together(gateway: Gateway) -> None:
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(2000))  # 220 KB
    answer, _ = await send_and_answer(gateway, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers)
    assert status_and_error(answer)[0] == 431


async def test_headers_under_the_limit_and_large_bodies_pass(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as c:
        resp = await c.get("/healthz", headers={"X-Padding": "a" * 40 * 1024})
        assert resp.status_code == 200, resp.text
        # A body sent with its headers in the same reads is not counted as header.
        resp = await c.post("/healthz", content=b"x" * 200 * 1024)
        assert resp.status_code == 405, resp.text  # the route answered: headers were fine
        # Several requests on one connection: each one's head is counted on its own.
        padding = {"X-Padding": "a" * 30 * 1024}
        for _ in range(20):
            assert (await c.get("/healthz", headers=padding)).status_code == 200


async def test_the_gateway_still_serves_while_one_client_sends_megabytes(
    gateway: Gateway,
) -> None:
    huge = b"GET / HTTP/1.1\r\nX-Padding: " + b"a" * 8 * 1024 * 1024
    attacks = [asyncio.create_task(send_and_answer(gateway, huge)) for _ in range(4)]
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as c:
        assert (await c.get("/healthz")).status_code == 200
    for answer, _ in await asyncio.gather(*attacks):
        assert status_and_error(answer)[0] == 431


async def test_whole_requests_larger_than_the_bound_pass_on_one_connection(
    gateway: Gateway,
) -> None:
    """A request whose head and body arrive in one read completes there; what that read
    held is not the next request's head. Each 200 KB request goes in one write, one after
    the other on one keep-alive connection (as an HTTP client sends small uploads)."""
    body = b"x" * 200_000
    assert len(body) > gateway.settings.max_header_bytes
    request = (
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    ) + body
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    try:
        for _ in range(3):
            writer.write(request)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200"), head[:200]
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.lower().split(b"\r\n")
                if line.startswith(b"content-length:")
            )
            await reader.readexactly(length)
    finally:
        writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)
