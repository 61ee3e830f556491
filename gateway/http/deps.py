"""Request dependencies, as `Annotated` aliases so routes stay one line per input."""

from __future__ import annotations

import uuid
from typing import Annotated, cast

from fastapi import Depends, Request
from pydantic import AfterValidator

from core.graph import StageGraph
from core.settings import Settings
from events.bus import EventBus
from gateway.auth import Principal, resolve_principal
from gateway.services.container import Services
from storage.artifact_records import ArtifactRecordStore
from storage.artifacts import ArtifactStore
from storage.calibration import CalibrationStore
from storage.corrections import CorrectionStore
from storage.jobs import JobStore
from storage.speakers import SpeakerStore


def get_services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings(request: Request) -> Settings:
    # The app's own settings (HTTP limits, public URL), which a test may vary per app.
    return cast(Settings, request.app.state.settings)


def get_jobs(services: ServicesDep) -> JobStore:
    return services.jobs


def get_records(services: ServicesDep) -> ArtifactRecordStore:
    return services.records


def get_speakers(services: ServicesDep) -> SpeakerStore:
    return services.speakers


def get_corrections(services: ServicesDep) -> CorrectionStore:
    return services.corrections


def get_calibration(services: ServicesDep) -> CalibrationStore:
    return services.calibration


def get_store(services: ServicesDep) -> ArtifactStore:
    return services.store


def get_bus(services: ServicesDep) -> EventBus:
    return services.bus


def get_graph(services: ServicesDep) -> StageGraph:
    # The deployment's (SCRIBE_STAGE_GRAPH): ask it for a stage, e.g. graph.producer(Model).
    return services.graph


SettingsDep = Annotated[Settings, Depends(get_settings)]
JobStoreDep = Annotated[JobStore, Depends(get_jobs)]
RecordStoreDep = Annotated[ArtifactRecordStore, Depends(get_records)]
SpeakerStoreDep = Annotated[SpeakerStore, Depends(get_speakers)]
CorrectionStoreDep = Annotated[CorrectionStore, Depends(get_corrections)]
CalibrationStoreDep = Annotated[CalibrationStore, Depends(get_calibration)]
StoreDep = Annotated[ArtifactStore, Depends(get_store)]
BusDep = Annotated[EventBus, Depends(get_bus)]
GraphDep = Annotated[StageGraph, Depends(get_graph)]


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
