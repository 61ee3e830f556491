"""The FastAPI application: `create_app(settings)` wires routes, errors and services, and
runs the background loops, which call the services too: the retention sweep (jobs past
`retention_days`, voiceprints past their expiry) and the search index sync."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from core.settings import Settings
from gateway.http import docs, errors, page
from gateway.http.deps import get_principal
from gateway.http.guard import RequestGuard
from gateway.http.headers import SecurityHeaders
from gateway.routes import (
    corrections,
    events,
    health,
    intel,
    jobs,
    keys,
    live,
    metrics,
    results,
    search,
    speakers,
    stages,
)
from gateway.services import jobs as job_service
from gateway.services import voiceprints
from gateway.services.container import Services
from gateway.services.search_sync import search_syncer

log = logging.getLogger("scribe.gateway")


async def sweep_once(services: Services, retention_days: float | None) -> list[str]:
    """Delete the jobs past retention, their artifacts, events and search passages."""
    return await job_service.sweep_expired(services, retention_days)


async def sweep_voiceprints_once(services: Services) -> list[str]:
    """Delete the voiceprints past their expiry and their enrollment clips."""
    return await voiceprints.sweep_expired(services)


@asynccontextmanager
async def retention_sweeper(settings: Settings, services: Services) -> AsyncIterator[None]:
    """A sweep at startup, then every retention_interval_s: jobs past retention_days (when
    set) and voiceprints past their own expiry (any voiceprint may carry one)."""

    async def loop() -> None:
        while True:
            try:
                await sweep_once(services, settings.retention_days)
            except Exception:  # a failed sweep is retried at the next interval
                log.exception("retention sweep failed")
            try:
                await sweep_voiceprints_once(services)
            except Exception:
                log.exception("voiceprint expiry sweep failed")
            await asyncio.sleep(settings.retention_interval_s)

    task = asyncio.create_task(loop(), name="retention")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """The app. Given `services`, it uses them and leaves closing them to the caller;
    otherwise its lifespan connects on startup and closes on shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services is not None:
            app.state.services = services
            async with retention_sweeper(settings, services), search_syncer(services):
                yield
            return
        opened = await Services.connect(settings)
        app.state.services = opened
        try:
            async with retention_sweeper(settings, opened), search_syncer(opened):
                yield
        finally:
            await opened.close()

    app = FastAPI(
        title="Scribe",
        summary="Self-hosted meeting transcription: who said what, when.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # gateway.http.docs: Swagger UI from an installed package, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    # Set before the lifespan runs too, so a test client without lifespan works.
    if services is not None:
        app.state.services = services
    errors.install(app)
    app.add_middleware(RequestGuard, settings=settings)
    app.add_middleware(SecurityHeaders)  # outside the guard: its refusals get them too
    app.include_router(health.router)
    # What stages a job runs is no secret (the page needs it before any key is given).
    app.include_router(stages.router)
    # Every /v1 route needs a key when auth is on; health, the page and the docs stay open.
    for api in (
        jobs.router,
        events.router,
        results.router,
        speakers.router,
        corrections.router,
        metrics.router,
        search.router,
        intel.router,
        keys.router,
        live.router,
    ):
        app.include_router(api, dependencies=[Depends(get_principal)])
    app.include_router(live.socket_router)  # authenticates itself (gateway/services/live.py)

    docs.install(app)
    page.install(app)
    return app
