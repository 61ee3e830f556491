"""What the fixtures share: an HTTP client of a gateway app (`app_client`) and the removal
of a test's Redis keys (`delete_redis_prefix`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
import redis

if TYPE_CHECKING:
    from core.settings import Settings
    from gateway.services import Services

BASE_URL = "http://scribe"  # in-process requests go nowhere: any host will do


@asynccontextmanager
async def app_client(
    settings: Settings,
    services: Services,
    *,
    served: bool = False,
    raise_app_exceptions: bool = True,
    **options: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client of `create_app(settings, services)`.

    In this process through httpx's ASGI transport by default: no socket, and an exception
    in the app reaches the test (unless `raise_app_exceptions` is False: then the client
    gets the 500 a real server would send). With `served`, the app runs under uvicorn on
    loopback, configured as `scribe gateway` configures it (`gateway.http.server.server_config`),
    and the client talks to it over TCP: for what only a real connection shows
    (disconnects, streaming). The services are the caller's, opened and closed by it (the
    app's lifespan does not run). `options` go to `httpx.AsyncClient` (headers, timeout)."""
    # Imported here, not above: tests/conftest.py imports this module, and the gateway's
    # imports (FastAPI, qdrant-client, ...) would add seconds to every unit test run.
    import uvicorn

    from gateway.app import create_app
    from gateway.http.server import server_config

    app = create_app(settings, services)
    if not served:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, **options) as c:
            yield c
        return
    config = server_config(
        app, settings, host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started or serving.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "the gateway did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", **options)
        try:
            yield client
        finally:
            await client.aclose()  # closing twice is fine: a test may close it first
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 15)


def delete_redis_prefix(redis_url: str, prefix: str) -> None:
    """Delete every Redis key of a test run: those under `prefix`, and taskiq's autoclaim
    keys, which it names `autoclaim:<queue>` and so under `autoclaim:<prefix>`."""
    r = redis.Redis.from_url(redis_url)
    try:
        keys = list(r.scan_iter(f"{prefix}*")) + list(r.scan_iter(f"autoclaim:{prefix}*"))
        if keys:
            r.delete(*keys)
    finally:
        r.close()
