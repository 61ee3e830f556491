"""What a job produces: live progress (SSE), the transcript, the artifacts behind it."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel
from sse_starlette import EventSourceResponse

from core.artifacts import ArtifactRecord, DecodedAudio, MeetingResult
from core.corrections import apply_corrections
from core.errors import BadInput, Conflict, NotFound
from core.events import TERMINAL_EVENTS, JobEvent
from core.jobs import Job
from gateway.auth import STREAM_TOKEN_TTL_S, stream_token
from gateway.deps import BusDep, JobId, JobStoreDep, PrincipalDep, ServicesDep, StoreDep
from storage.artifacts import ArtifactStore
from storage.jobs import JobStore

router = APIRouter(prefix="/v1/jobs", tags=["results"])

_EVENT_ID = re.compile(r"\d{1,20}(-\d{1,20})?")
PING_S = 15
ResultFormat = Literal["json", "srt", "vtt", "txt"]


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


async def corrected_result(
    jobs: JobStore, store: ArtifactStore, job_id: str, owner: str | None = None
) -> MeetingResult:
    """The merged result of a succeeded job with the job's corrections applied."""
    job = await jobs.get_job(job_id, owner)
    if job.status != "succeeded":
        raise _not_ready(job)
    record = await jobs.current_artifact(job_id, "merge")
    if record is None:
        raise NotFound(f"job {job_id} succeeded but has no merged result recorded")
    result = await asyncio.to_thread(store.get_json, store.key_of(record.uri), MeetingResult)
    corrections = await jobs.list_corrections(job_id, owner)
    return apply_corrections(result, corrections, basis=record.sha256)


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
    job_id: JobId,
    jobs: JobStoreDep,
    store: StoreDep,
    principal: PrincipalDep,
    fmt: Annotated[ResultFormat, Query(alias="format")] = "json",
) -> Response:
    result = await corrected_result(jobs, store, job_id, principal.owner)
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
async def job_artifacts(
    job_id: JobId, jobs: JobStoreDep, principal: PrincipalDep
) -> list[ArtifactRecord]:
    await jobs.get_job(job_id, principal.owner)
    return await jobs.list_artifacts(job_id, principal.owner)


# ---------------------------------------------------------------- audio

AUDIO_CHUNK = 256 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range `[start, end]` (inclusive) a Range header asks for, or None for
    the whole file (no header, several ranges, or a unit other than bytes). Raises
    `RangeNotSatisfiable` for a range that starts past the end."""
    if not header:
        return None
    m = _RANGE.fullmatch(header.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if not first:  # "bytes=-500": the last 500 bytes
        length = int(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiable(size)
    return start, end


class RangeNotSatisfiable(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"range outside 0-{size}")
        self.size = size


def ranged_stream(store: ArtifactStore, key: str, range_header: str | None) -> Response:
    """Serve `key` from any fsspec store with single-range support (206), reading in
    chunks; `file://` stores use FileResponse instead, which does the same from disk."""
    path = store.path(key)
    size = int(store.fs.size(path))
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-cache"}
    try:
        wanted = parse_range(range_header, size)
    except RangeNotSatisfiable as e:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{e.size}"})
    start, end = wanted if wanted is not None else (0, size - 1)

    async def body() -> AsyncIterator[bytes]:
        f = await asyncio.to_thread(store.fs.open, path, "rb")
        try:
            await asyncio.to_thread(f.seek, start)
            left = end - start + 1
            while left > 0:
                chunk: bytes = await asyncio.to_thread(f.read, min(AUDIO_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(f.close)

    headers["Content-Length"] = str(end - start + 1)
    if wanted is None:
        return StreamingResponse(body(), media_type="audio/wav", headers=headers)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(body(), status_code=206, media_type="audio/wav", headers=headers)


@router.get(
    "/{job_id}/audio",
    summary="The recording as decoded (16 kHz mono WAV), seekable with Range requests",
    responses={200: {"content": {"audio/wav": {}}}, 206: {"description": "a byte range"}},
    response_class=Response,
)
async def job_audio(
    job_id: JobId,
    request: Request,
    jobs: JobStoreDep,
    store: StoreDep,
    principal: PrincipalDep,
    token: Annotated[
        str | None, Query(description="a stream token, for clients that cannot send headers")
    ] = None,
) -> Response:
    job = await jobs.get_job(job_id, principal.owner)
    record = await jobs.current_artifact(job_id, "decode")
    if record is None:
        if job.status == "failed":
            raise Conflict(f"job {job_id} failed before its audio was decoded")
        raise Conflict(f"job {job_id} is {job.status}; its audio is ready once decode finishes")
    decoded = await asyncio.to_thread(store.get_json, store.key_of(record.uri), DecodedAudio)
    key = store.key_of(decoded.audio_uri)
    if not await asyncio.to_thread(store.exists, key):
        raise NotFound(f"the decoded audio of job {job_id} is no longer stored")
    if store.is_local:
        return FileResponse(
            store.path(key),
            media_type="audio/wav",
            filename=f"{job_id}.wav",
            content_disposition_type="inline",
            headers={"Cache-Control": "no-cache"},
        )
    return ranged_stream(store, key, request.headers.get("range"))
