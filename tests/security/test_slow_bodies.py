"""Slow bodies on the routes that are not uploads, against a real uvicorn gateway with few
connections: they used to get the upload's deadline (hours), so a few dozen clients that
announce a body and send it a byte at a time held every connection, and /healthz stopped
answering. Now such a body has `request_body_timeout_s` in all, and the gateway serves
again as soon as it passed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from core.settings import Settings
from core.units import human_duration
from gateway.services import Services
from tests.security.conftest import Gateway, serving
from tests.security.test_hostile_clients import SLACK_S, request_head, status_and_error

CONNECTIONS = 20
SLOW_CLIENTS = 25
BODY_TIMEOUT_S = 2.0
BYTE_EVERY_S = 0.4  # well inside the idle timeout below: never idle, never done


@pytest.fixture(scope="module")
async def small_gateway(guarded_settings: Settings) -> AsyncIterator[Gateway]:
    settings = guarded_settings.model_copy(
        update={
            "max_connections": CONNECTIONS,
            "request_body_timeout_s": BODY_TIMEOUT_S,
            "body_idle_timeout_s": 10.0,
            "upload_timeout_s": 3 * 3600.0,  # what every body used to get
        }
    )
    services = await Services.connect(settings)
    try:
        async with serving(settings, services, log_level="critical") as gw:
            yield gw
    finally:
        await services.close()


async def slow_client(gw: Gateway, until: float) -> bytes:
    """`GET /healthz` announcing a 256 KiB body, then a byte every BYTE_EVERY_S, no key:
    what the server answered (until `until` at the latest)."""
    reader, writer = await asyncio.open_connection(gw.host, gw.port)
    head = request_head("GET", "/healthz", f"Content-Length: {256 * 1024}")
    try:
        writer.write(head)
        await writer.drain()

        async def trickle() -> None:
            while time.monotonic() < until:
                await asyncio.sleep(BYTE_EVERY_S)
                writer.write(b"x")
                await writer.drain()

        sending = asyncio.create_task(trickle())
        try:
            return await asyncio.wait_for(reader.read(65536), timeout=until - time.monotonic())
        except (TimeoutError, ConnectionError):
            return b""
        finally:
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
    finally:
        writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)


async def test_slow_bodies_end_quickly_and_health_answers(small_gateway: Gateway) -> None:
    started = time.monotonic()
    until = started + BODY_TIMEOUT_S + 3 * SLACK_S
    clients = []
    for _ in range(SLOW_CLIENTS):  # one after the other, as they would come
        clients.append(asyncio.create_task(slow_client(small_gateway, until)))
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # all connected, those let in holding their connection
    async with httpx.AsyncClient(base_url=small_gateway.url, timeout=5) as c:
        assert (await c.get("/healthz")).status_code == 503  # the attack works: all are held

    # /healthz answers again once the slow ones were cut, not after the upload deadline.
    answered_at = None
    async with httpx.AsyncClient(base_url=small_gateway.url, timeout=5) as c:
        while time.monotonic() < until:
            try:
                if (await c.get("/healthz")).status_code == 200:
                    answered_at = time.monotonic() - started
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    answers = await asyncio.gather(*clients)
    assert answered_at is not None, "/healthz did not answer while slow bodies were coming"
    assert answered_at < BODY_TIMEOUT_S + SLACK_S, answered_at

    statuses = [int(a.split(b" ", 2)[1]) if a else None for a in answers]
    # The connections past the limit were refused at once (uvicorn's 503, text); every one
    # that got in was cut with a 408 that says why.
    assert all(status in (408, 503) for status in statuses), statuses
    timed_out = [status_and_error(a)[1] for a in answers if a.startswith(b"HTTP/1.1 408")]
    assert len(timed_out) >= CONNECTIONS - 2, statuses  # /healthz's polls take a few
    limit = human_duration(BODY_TIMEOUT_S)
    for error in timed_out:
        assert error["code"] == "request_timeout"
        assert error["message"] == f"the request body took too long to arrive; the limit is {limit}"
