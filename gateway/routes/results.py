"""What a job produces: live progress (SSE), the transcript, the artifacts behind it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Header, Query, Response
from sse_starlette import EventSourceResponse

from core.artifacts import ArtifactRecord, MeetingResult
from core.errors import BadInput, Conflict, NotFound
from core.events import TERMINAL_EVENTS, JobEvent
from core.jobs import Job
from gateway.deps import BusDep, JobStoreDep, StoreDep

router = APIRouter(prefix="/v1/jobs", tags=["results"])

_EVENT_ID = re.compile(r"\d{1,20}(-\d{1,20})?")
PING_S = 15
ResultFormat = Literal["json", "srt", "vtt", "txt"]


def _sse(event: JobEvent) -> dict[str, str]:
    return {"id": event.id or "", "event": event.type, "data": event.model_dump_json()}


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
)
async def job_events(
    job_id: str,
    jobs: JobStoreDep,
    bus: BusDep,
    after: Annotated[str | None, Query(description="resume after this event id")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    job = await jobs.get_job(job_id)
    resume = last_event_id or after
    if resume is not None and not _EVENT_ID.fullmatch(resume):
        raise BadInput(f"{resume!r} is not an event id (expected something like 1700000000000-0)")
    finished = job.status in ("succeeded", "failed")
    if not finished:
        resume = _skip_finished_runs(await bus.history(job_id, resume), resume)

    async def stream() -> AsyncIterator[dict[str, str]]:
        if finished:
            for event in await bus.history(job_id, resume):
                yield _sse(event)
            return
        # aclosing: when the client goes away the generator is closed at once, and
        # EventBus.follow's `finally` unsubscribes and closes its Pub/Sub connection.
        follow = cast(AsyncGenerator[JobEvent, None], bus.follow(job_id, resume))
        async with aclosing(follow) as events:
            async for event in events:
                yield _sse(event)

    return EventSourceResponse(stream(), ping=PING_S)


def _not_ready(job: Job) -> Conflict:
    if job.status == "failed":
        stage = job.error.stage if job.error else None
        reason = job.error.message if job.error else "no reason was recorded"
        where = f" at stage {stage!r}" if stage else ""
        return Conflict(f"job {job.id} failed{where}: {reason}. Fix the input or replay the stage.")
    running = [s.stage for s in job.stages if s.status == "running"]
    now = f" (now: {running[0]})" if running else ""
    return Conflict(f"job {job.id} is {job.status}{now}; the result is ready once it succeeds")


@router.get(
    "/{job_id}/result",
    summary="The speaker-attributed transcript as JSON, SRT, WebVTT or plain text",
    responses={200: {"content": {"text/plain": {}, "text/vtt": {}, "application/x-subrip": {}}}},
)
async def job_result(
    job_id: str,
    jobs: JobStoreDep,
    store: StoreDep,
    fmt: Annotated[ResultFormat, Query(alias="format")] = "json",
) -> Response:
    job = await jobs.get_job(job_id)
    if job.status != "succeeded":
        raise _not_ready(job)
    record = await jobs.current_artifact(job_id, "merge")
    if record is None:
        raise NotFound(f"job {job_id} succeeded but has no merged result recorded")
    result = await asyncio.to_thread(store.get_json, store.key_of(record.uri), MeetingResult)
    from core.formats import render  # written beside the pipeline; no model imports

    body, media_type = render(result, fmt)
    headers = {}
    if fmt != "json":
        headers["Content-Disposition"] = f'attachment; filename="{job_id}.{fmt}"'
    return Response(body, media_type=media_type, headers=headers)


@router.get(
    "/{job_id}/artifacts",
    response_model=list[ArtifactRecord],
    summary="Every artifact of the job with its provenance (inputs, model, parameters)",
)
async def job_artifacts(job_id: str, jobs: JobStoreDep) -> list[ArtifactRecord]:
    await jobs.get_job(job_id)
    return await jobs.list_artifacts(job_id)
