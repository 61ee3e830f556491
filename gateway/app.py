"""The FastAPI application: `create_app(settings)` wires routes, errors and services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from core.settings import Settings
from gateway import errors
from gateway.routes import corrections, health, jobs, metrics, results, speakers
from gateway.services import Services

STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """The app. Given `services`, it uses them and leaves closing them to the caller;
    otherwise its lifespan connects on startup and closes on shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services is not None:
            app.state.services = services
            yield
            return
        opened = await Services.connect(settings)
        app.state.services = opened
        try:
            yield
        finally:
            await opened.close()

    app = FastAPI(
        title="Scribe",
        summary="Self-hosted meeting transcription: who said what, when.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    # Set before the lifespan runs too, so a test client without lifespan works.
    if services is not None:
        app.state.services = services
    errors.install(app)
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(results.router)
    app.include_router(speakers.router)
    app.include_router(corrections.router)
    app.include_router(metrics.router)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
