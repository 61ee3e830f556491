"""Live meetings (docs/live.md): start one, send its audio over a WebSocket, stop it, and
read the captions it showed. The socket's protocol is in gateway/services/live.py."""

from __future__ import annotations

from dataclasses import asdict
from typing import cast

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel

from core.artifacts import LiveDraft
from core.settings import Settings
from gateway.http.deps import JobId, PrincipalDep, ServicesDep, SettingsDep
from gateway.services import live
from gateway.services.container import Services

router = APIRouter(prefix="/v1/live", tags=["live"])
# The socket authenticates itself (a key header or a stream token): a WebSocket has no
# Request for the /v1 routers' dependency.
socket_router = APIRouter(prefix="/v1/live", tags=["live"])


class LiveStartRequest(BaseModel):
    language: str | None = None


class LiveStartAnswer(BaseModel):
    job_id: str
    token: str  # for the socket's and the events' ?token=
    expires_in: int
    socket: str
    sample_rate: int
    chunk_max_bytes: int


class LiveStopAnswer(BaseModel):
    job_id: str
    reason: str
    stored_s: float
    queued: bool


@router.post("", response_model=LiveStartAnswer, status_code=201, summary="Start a live meeting")
async def start_live(
    services: ServicesDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    body: LiveStartRequest | None = None,
) -> LiveStartAnswer:
    started = await live.start(services, settings, principal, body.language if body else None)
    return LiveStartAnswer(**asdict(started))


@router.post(
    "/{job_id}/stop",
    response_model=LiveStopAnswer,
    summary="End a live meeting: its recording goes through the whole graph",
)
async def stop_live(
    job_id: JobId, services: ServicesDep, principal: PrincipalDep
) -> LiveStopAnswer:
    end = await live.stop(services, principal, job_id, "stopped")
    return LiveStopAnswer(
        job_id=job_id,
        reason=end.stopped.reason,
        stored_s=round(end.stopped.duration_s, 3),
        queued=end.queued,
    )


@router.get(
    "/{job_id}/draft",
    response_model=LiveDraft,
    summary="The captions the meeting showed live, kept after its transcript is made",
)
async def live_draft(job_id: JobId, services: ServicesDep, principal: PrincipalDep) -> LiveDraft:
    return await live.draft(services, principal, job_id)


@socket_router.websocket("/{job_id}/audio")
async def live_audio(websocket: WebSocket, job_id: str) -> None:
    app = websocket.app
    services = cast(Services, app.state.services)
    settings = cast(Settings, app.state.settings)
    await live.serve_socket(websocket, services, settings, job_id)
