"""With API keys on: a gateway app in the test process (httpx's ASGI transport), on real
PostgreSQL, Redis and a file:// store, for every test module of this folder."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from core.settings import Settings
from gateway.services import Services
from tests.support import app_client


@pytest.fixture(scope="module")
def auth_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"auth": "on"})


@pytest.fixture(scope="module")
async def services(auth_settings: Settings) -> AsyncIterator[Services]:
    svc = await Services.connect(auth_settings)
    yield svc
    await svc.close()


@pytest.fixture(scope="module")
async def client(auth_settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(auth_settings, services) as c:
        yield c
