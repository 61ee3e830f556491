"""A real gateway with API keys on, served by uvicorn on loopback exactly as `scribe gateway`
builds its server (gateway.http.server), with short timeouts so slow clients are quick to test;
real PostgreSQL, Redis and a file:// store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from core.settings import Settings
from gateway.app import create_app
from gateway.http.server import server_config
from gateway.services import Services
from tests.tenants import Tenant, new_tenant

HEADER_TIMEOUT_S = 1.0
IDLE_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 2.0
UPLOAD_TIMEOUT_S = 4.0


@dataclass
class Gateway:
    settings: Settings
    services: Services
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client(self, tenant: Tenant | None = None) -> httpx.AsyncClient:
        headers = tenant.headers if tenant else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=20)

    async def tenant(self, **limits: float) -> Tenant:
        return await new_tenant(self.services.auth, **limits)


def guarded(settings: Settings, **update: object) -> Settings:
    """`settings` with keys on and the short timeouts, plus `update`. A module that needs
    a Redis prefix or a database of its own (a stand-in worker, say) overrides the
    `guarded_settings` fixture with this."""
    return settings.model_copy(
        update={
            "auth": "on",
            "redis_prefix": f"{settings.redis_prefix}-sec",
            "header_timeout_s": HEADER_TIMEOUT_S,
            "body_idle_timeout_s": IDLE_TIMEOUT_S,
            "request_body_timeout_s": BODY_TIMEOUT_S,
            "upload_timeout_s": UPLOAD_TIMEOUT_S,
            **update,
        }
    )


@pytest.fixture(scope="module")
def guarded_settings(settings: Settings) -> Settings:
    return guarded(settings)


@asynccontextmanager
async def serving(settings: Settings, services: Services, **options: Any) -> AsyncIterator[Gateway]:
    """A gateway with these settings on a free loopback port, for as long as the block runs
    (`options` go to uvicorn, e.g. log_level)."""
    app = create_app(settings, services)
    options = {"log_level": "warning", "lifespan": "off", **options}
    config = server_config(app, settings, host="127.0.0.1", port=0, **options)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "the gateway did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield Gateway(settings, services, "127.0.0.1", port)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@pytest.fixture(scope="module")
async def gateway(guarded_settings: Settings) -> AsyncIterator[Gateway]:
    services = await Services.connect(guarded_settings)
    try:
        async with serving(guarded_settings, services) as gw:
            yield gw
    finally:
        await services.close()


@pytest.fixture(scope="module")
async def alice(gateway: Gateway) -> Tenant:
    return await gateway.tenant()
