"""Jobs: receive an upload (the preamble a job's recording and a speaker's clips share),
create a job from it, queue stages, replay a stage, delete a job everywhere, and the
retention sweep that deletes the jobs past `retention_days` the same way.

Replaying is one implementation (`replay`): the replay route and the search index's
"embed this job again" (gateway/services/search.py, `resend_embed`) both go through it.
Deleting is one too (`delete_everywhere`): DELETE /v1/jobs/{id} and the retention sweep.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import Request

from core.artifacts import WHISPER_LANGUAGES, JobParams
from core.errors import BadInput, Conflict, NotFound
from core.events import JobEvent
from core.settings import Settings
from events.queue import send_stages
from gateway.auth import Principal
from gateway.http.errors import InvalidRequest
from gateway.http.multipart import (
    FileKey,
    MultipartReceiver,
    ReceivedForm,
    check_content_length,
)
from gateway.http.params import merge_params, params_from_form
from gateway.services.container import Services
from gateway.services.index import forget_job
from storage.artifacts import job_prefix, upload_key
from storage.limits import too_many
from storage.retention import expired_job_batches

retention_log = logging.getLogger("scribe.retention")


def check_language(params: JobParams) -> JobParams:
    """Refuse at the door what the transcriber would fail on, hours later."""
    lang = params.language
    if lang is not None and lang not in WHISPER_LANGUAGES:
        shown = lang[:40]
        hint = f" (did you mean {shown.lower()!r}?)" if shown.lower() in WHISPER_LANGUAGES else ""
        raise InvalidRequest(
            f"language: {shown!r} is not a language the transcriber knows{hint}; give a code"
            " such as 'en' or 'fr', or leave it out to detect the language"
        )
    return params


# ---------------------------------------------------------------- uploads


def upload_limit(settings: Settings, principal: Principal) -> int:
    """The server's upload limit, or the key's when that is lower."""
    own = principal.max_upload_bytes
    return min(settings.max_upload_bytes, own) if own is not None else settings.max_upload_bytes


async def check_active_jobs(services: Services, principal: Principal) -> None:
    """TooManyJobs (429) when the key's tenant has as many unfinished jobs (enrollments in
    progress included) as it may."""
    max_active = principal.max_concurrent_jobs
    if max_active is None:
        return
    active = await services.jobs.active_jobs(principal.owner)
    if active >= max_active:
        raise too_many(max_active, active)


@asynccontextmanager
async def received_upload(
    services: Services,
    settings: Settings,
    request: Request,
    principal: Principal,
    *,
    file_key: FileKey,
) -> AsyncIterator[tuple[MultipartReceiver, ReceivedForm]]:
    """What every upload (a job's recording, a speaker's clips) goes through before its
    form is looked at: the key's upload limit; an announced body over it refused before a
    byte is read; the key's room for one more unfinished job (an enrollment counts as
    one), checked before the upload is read and again, atomically, when the job or the
    enrollment takes its place; then the form, its files streamed to the artifact store
    under `file_key`. Inside the block the caller checks the form and commits
    (`rx.commit()`); an error there leaves the block, which deletes what was stored."""
    limit = upload_limit(settings, principal)
    check_content_length(request, limit)
    await check_active_jobs(services, principal)
    async with MultipartReceiver(
        request, services.store, file_key=file_key, max_file_bytes=limit
    ) as rx:
        yield rx, await rx.receive()


async def create(
    services: Services, settings: Settings, request: Request, principal: Principal
) -> str:
    """A job from an uploaded recording (form field `file`, job parameters beside it),
    recorded and queued from the graph's first stages; returns its id."""
    job_id = str(uuid.uuid4())
    key = upload_key(job_id)

    def file_key(field: str, index: int) -> str | None:
        if field != "file":
            return None
        if index > 0:
            raise BadInput("send one file per job (the form has several 'file' parts)")
        return key

    upload = received_upload(services, settings, request, principal, file_key=file_key)
    async with upload as (rx, form):
        if not form.files:
            raise BadInput("the form has no 'file' field; attach the recording as 'file'")
        params = check_language(params_from_form(form.fields))
        part = form.files[0]
        (stored,) = await rx.commit()
        # An error here leaves the `async with`, which deletes the stored upload.
        await services.jobs.create_job(
            job_id=job_id,
            filename=part.filename,
            content_type=part.content_type,
            size_bytes=stored.size_bytes,
            upload_uri=stored.uri,
            upload_sha256=stored.sha256,
            params=params,
            owner=principal.owner,
            max_duration_s=principal.max_duration_s,
            max_active=principal.max_concurrent_jobs,
        )
    await enqueue(services, job_id, services.graph.roots)
    return job_id


async def enqueue(services: Services, job_id: str, stages: tuple[str, ...]) -> None:
    """Tell listeners the job is queued, then hand its first stages to the workers."""
    await services.bus.publish(
        JobEvent(
            type="job.queued",
            job_id=job_id,
            stage=stages[0],
            message=f"queued from {', '.join(stages)}",
        )
    )
    await send_stages(services.broker, job_id, stages)


# ---------------------------------------------------------------- replay


async def replay(
    services: Services,
    job_id: str,
    stage: str,
    *,
    params: JobParams | None = None,
    on_requeued: Callable[[], Awaitable[None]] | None = None,
) -> bool:
    """Run `stage` of the job again, and only what depends on it (replaying transcribe
    never re-runs diarize): False, and nothing changed, when the job is queued or running.
    One conditional update decides, so of two concurrent replays one is queued. `params`
    become the job's before the stage is sent; `on_requeued` is awaited there too."""
    # A stage declared after the job was made has no row yet.
    await services.jobs.ensure_stage_rows(job_id)
    again = list(services.graph.downstream(stage))
    if not await services.leases.requeue_if_finished(job_id, again):
        return False
    if params is not None:
        await services.jobs.update_params(job_id, params)
    if on_requeued is not None:
        await on_requeued()
    await enqueue(services, job_id, (stage,))
    return True


async def replay_stage(
    services: Services,
    principal: Principal,
    job_id: str,
    stage: str,
    overrides: Mapping[str, Any] | None = None,
) -> None:
    """POST /v1/jobs/{id}/stages/{stage}/replay: the caller's job, a stage of the graph,
    the job finished, `overrides` merged into its params and checked, room for one more
    unfinished job (a replay is a job running again); then `replay`. Conflict (409) when
    the job is running, or started running meanwhile."""
    job = await services.jobs.get_job(job_id, principal.owner)
    graph = services.graph
    if stage not in graph:
        raise NotFound(f"unknown stage {stage!r}; stages are {', '.join(graph.names)}")
    busy = Conflict("job is still running; wait for it to finish before replaying a stage")
    if job.status in ("queued", "running"):
        raise busy
    params = None
    if overrides:
        params = check_language(merge_params(job.params, overrides))
    await check_active_jobs(services, principal)
    if not await replay(services, job_id, stage, params=params):
        raise busy


# ---------------------------------------------------------------- delete


async def delete(services: Services, job_id: str, owner: str | None) -> None:
    """DELETE /v1/jobs/{id}: NotFound (404) for another tenant's job or a missing one,
    before anything is touched; then `delete_everywhere`."""
    await services.jobs.get_job(job_id, owner)
    await delete_everywhere(services, job_id, owner)


async def delete_everywhere(
    services: Services, job_id: str, owner: str | None = None, *, missing_ok: bool = False
) -> None:
    """Delete the job's files (upload and artifacts), then its row (stages, artifact
    records, corrections), its events and its passages in the search index. Files first,
    so a failure in between leaves a row to find and delete again. NotFound when the row
    is gone already, unless `missing_ok` (the sweep: deleted meanwhile by its owner)."""
    await asyncio.to_thread(services.store.delete_prefix, job_prefix(job_id))
    try:
        await services.jobs.delete_job(job_id, owner)
    except NotFound:
        if not missing_ok:
            raise
    await services.bus.delete(job_id)
    await forget_job(services, job_id)


async def sweep_expired(
    services: Services, retention_days: float | None, *, now: datetime | None = None
) -> list[str]:
    """Delete everywhere every job created more than `retention_days` ago (none when it is
    None); returns their ids."""
    if retention_days is None:
        return []
    deleted: list[str] = []
    async for batch in expired_job_batches(services.jobs, retention_days, now=now):
        for job_id in batch:
            await delete_everywhere(services, job_id, missing_ok=True)
            deleted.append(job_id)
        retention_log.info(
            "retention: deleted %d job(s) older than %s days", len(batch), retention_days
        )
    return deleted
