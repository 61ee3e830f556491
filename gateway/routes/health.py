"""Liveness (`/healthz`: the process answers) and readiness (`/readyz`: DB and Redis do)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.http.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    checks: dict[str, str] = {}

    async def db() -> None:
        async with services.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    async def redis() -> None:
        await services.redis.ping()

    for name, probe in (("database", db), ("redis", redis)):
        try:
            await asyncio.wait_for(probe(), timeout=2.0)
            checks[name] = "ok"
        except Exception as e:  # any failure means "not ready"; say which
            checks[name] = f"error: {type(e).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )
