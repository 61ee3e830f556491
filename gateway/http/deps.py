"""Request dependencies, as `Annotated` aliases so routes stay one line per input: the
services container, the app's settings, the caller (`PrincipalDep`, applied to every /v1
router), a job id as stored, and the two stores routes read directly (the job list, the
event stream). Everything else a route needs goes through a gateway/services function."""

from __future__ import annotations

import uuid
from typing import Annotated, cast

from fastapi import Depends, Request
from pydantic import AfterValidator

from core.settings import Settings
from events.bus import EventBus
from gateway.auth import Principal, resolve_principal
from gateway.services.container import Services
from storage.jobs import JobStore


def get_services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings(request: Request) -> Settings:
    # The app's own settings (HTTP limits, public URL), which a test may vary per app.
    return cast(Settings, request.app.state.settings)


def get_jobs(services: ServicesDep) -> JobStore:
    return services.jobs


def get_bus(services: ServicesDep) -> EventBus:
    return services.bus


SettingsDep = Annotated[Settings, Depends(get_settings)]
JobStoreDep = Annotated[JobStore, Depends(get_jobs)]
BusDep = Annotated[EventBus, Depends(get_bus)]


async def get_principal(
    request: Request, services: ServicesDep, settings: SettingsDep
) -> Principal:
    """The caller, from their API key (or a stream token); 401 when auth is on and there
    is none. Applied to every /v1 router, so no route can forget it."""
    principal = await resolve_principal(request, settings, services.auth, services.secret)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def _canonical_id(value: str) -> str:
    """A job id as stored (lower-case, hyphenated), however the client spelled it: every
    key, folder and event stream is named after that spelling. Not a UUID: left as it is,
    for the store's 404."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return value


JobId = Annotated[str, AfterValidator(_canonical_id)]
