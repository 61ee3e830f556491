"""A job's live progress as Server-Sent Events, and the stream token that opens them (and
the audio) for clients that cannot send an Authorization header."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Annotated, cast

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel
from sse_starlette import EventSourceResponse

from core.errors import BadInput
from core.events import TERMINAL_EVENTS, JobEvent
from gateway.auth import STREAM_TOKEN_TTL_S, stream_token
from gateway.http.deps import BusDep, JobId, JobStoreDep, PrincipalDep, ServicesDep

router = APIRouter(prefix="/v1/jobs", tags=["events"])

_EVENT_ID = re.compile(r"\d{1,20}(-\d{1,20})?")
PING_S = 15


def _sse(event: JobEvent) -> dict[str, str]:
    return {"id": event.id or "", "event": event.type, "data": event.json_text()}


def _skip_finished_runs(history: list[JobEvent], resume: str | None) -> str | None:
    """Where to follow a running job from.

    A replayed job's history holds an earlier run's terminal event before the replay's
    `job.queued`; EventBus.follow would end the stream there. Start just before the
    latest `job.queued` instead when a terminal event precedes it.
    """
    last_queued = max((i for i, e in enumerate(history) if e.type == "job.queued"), default=None)
    if last_queued is None or last_queued == 0:
        return resume
    if any(e.type in TERMINAL_EVENTS for e in history[:last_queued]):
        return history[last_queued - 1].id or resume
    return resume


@router.get(
    "/{job_id}/events",
    summary="Progress as Server-Sent Events (resumable with Last-Event-ID or ?after=)",
    response_class=EventSourceResponse,
    # Each event's data: one JobEvent (the schema the page's generated types read).
    responses={200: {"model": JobEvent}},
)
async def job_events(
    job_id: JobId,
    jobs: JobStoreDep,
    services: ServicesDep,
    bus: BusDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(description="resume after this event id")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    token: Annotated[
        str | None, Query(description="a stream token, for clients that cannot send headers")
    ] = None,
) -> EventSourceResponse:
    job = await jobs.get_job(job_id, principal.owner)
    resume = last_event_id or after
    if resume is not None and not _EVENT_ID.fullmatch(resume):
        raise BadInput(f"{resume!r} is not an event id (expected something like 1700000000000-0)")
    finished = job.status in ("succeeded", "failed")
    if not finished:
        resume = _skip_finished_runs(await bus.history(job_id, resume), resume)

    async def allowed() -> bool:
        # A stream opened with a key (or a token issued to one) ends once it is revoked.
        return principal.key_id is None or await services.auth.key_active(principal.key_id)

    async def stream() -> AsyncIterator[dict[str, str]]:
        if finished:
            for event in await bus.history(job_id, resume):
                yield _sse(event)
            return
        # aclosing: when the client goes away the generator is closed at once, and
        # EventBus.follow stops taking this job's live events.
        follow = cast(AsyncGenerator[JobEvent, None], bus.follow(job_id, resume))
        async with aclosing(follow) as events:
            async for event in _checked(events, allowed, every_s=PING_S):
                yield _sse(event)

    return EventSourceResponse(stream(), ping=PING_S)


async def _checked(
    events: AsyncIterator[JobEvent], allowed: Callable[[], Awaitable[bool]], *, every_s: float
) -> AsyncIterator[JobEvent]:
    """`events`, until `allowed()` says no; it is asked every `every_s` seconds (as often
    as the stream's pings), whether events come or not."""
    waiting: asyncio.Task[JobEvent] | None = None
    checked = time.monotonic()
    try:
        while True:
            if waiting is None:
                waiting = asyncio.ensure_future(anext(events))
            left = checked + every_s - time.monotonic()
            done, _ = await asyncio.wait({waiting}, timeout=max(left, 0.0))
            if time.monotonic() - checked >= every_s:
                if not await allowed():
                    return
                checked = time.monotonic()
            if not done:
                continue
            try:
                event = waiting.result()
            except StopAsyncIteration:
                return
            waiting = None
            yield event
    finally:
        if waiting is not None and not waiting.done():
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await waiting


class StreamToken(BaseModel):
    token: str
    expires_in: int


@router.post(
    "/{job_id}/events/token",
    response_model=StreamToken,
    summary="A short-lived token for the job's events and audio, sent as ?token=",
)
async def job_stream_token(
    job_id: JobId, jobs: JobStoreDep, services: ServicesDep, principal: PrincipalDep
) -> StreamToken:
    # EventSource and <audio> cannot send an Authorization header: this token stands in
    # for the key on those two routes of this one job, for ten minutes.
    await jobs.get_job(job_id, principal.owner)
    token = stream_token(services.secret, job_id, principal.owner, principal.key_id)
    return StreamToken(token=token, expires_in=STREAM_TOKEN_TTL_S)
