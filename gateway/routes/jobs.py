"""Jobs: upload (create), look up, list, delete, replay a stage."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from core.artifacts import WHISPER_LANGUAGES, JobParams
from core.errors import BadInput, Conflict, NotFound
from core.jobs import Job
from core.settings import Settings
from gateway.auth import Principal
from gateway.http.deps import (
    JobId,
    JobStoreDep,
    PrincipalDep,
    ServicesDep,
    SettingsDep,
)
from gateway.http.errors import InvalidRequest
from gateway.http.multipart import MultipartReceiver, check_content_length
from gateway.http.params import merge_params, params_from_form
from gateway.services.container import Services, enqueue
from gateway.services.search import forget_job
from storage.artifacts import job_prefix, upload_key
from storage.leases import LeaseStore
from storage.limits import too_many

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


class JobLinks(BaseModel):
    self: str
    events: str
    result: str
    artifacts: str


class JobAccepted(BaseModel):
    id: str
    status: str
    links: JobLinks


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Loose on purpose: merged into the job's params, then validated as JobParams.
    params: dict[str, Any] | None = None


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


def job_links(settings: Settings, job_id: str) -> JobLinks:
    base = (settings.public_url or "").rstrip("/")
    self_url = f"{base}/v1/jobs/{job_id}"
    return JobLinks(
        self=self_url,
        events=f"{self_url}/events",
        result=f"{self_url}/result",
        artifacts=f"{self_url}/artifacts",
    )


def accepted(settings: Settings, job_id: str, status: str) -> JSONResponse:
    links = job_links(settings, job_id)
    body = JobAccepted(id=job_id, status=status, links=links)
    return JSONResponse(body.model_dump(), status_code=202, headers={"Location": links.self})


async def check_active_jobs(services: Services, principal: Principal) -> None:
    """TooManyJobs (429) when the key's tenant has as many unfinished jobs (enrollments in
    progress included) as it may."""
    max_active = principal.max_concurrent_jobs
    if max_active is None:
        return
    active = await services.jobs.active_jobs(principal.owner)
    if active >= max_active:
        raise too_many(max_active, active)


def upload_limit(settings: Settings, principal: Principal) -> int:
    """The server's upload limit, or the key's when that is lower."""
    own = principal.max_upload_bytes
    return min(settings.max_upload_bytes, own) if own is not None else settings.max_upload_bytes


_UPLOAD_FORM: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "language": {"type": "string", "example": "fr"},
                        "num_speakers": {"type": "integer", "minimum": 1, "maximum": 64},
                        "min_speakers": {"type": "integer", "minimum": 1, "maximum": 64},
                        "max_speakers": {"type": "integer", "minimum": 1, "maximum": 64},
                        "identify_threshold": {"type": "number", "minimum": -1, "maximum": 1},
                    },
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=202,
    response_model=JobAccepted,
    summary="Upload a recording and start a job",
    openapi_extra=_UPLOAD_FORM,
)
async def create_job(
    request: Request, services: ServicesDep, settings: SettingsDep, principal: PrincipalDep
) -> JSONResponse:
    # The body is read by hand (streamed to storage), so no form parameters are declared.
    limit = upload_limit(settings, principal)
    check_content_length(request, limit)
    max_active = principal.max_concurrent_jobs
    # Refused before the upload is read; checked again, atomically, when the job is recorded.
    await check_active_jobs(services, principal)
    job_id = str(uuid.uuid4())
    key = upload_key(job_id)

    def file_key(field: str, index: int) -> str | None:
        if field != "file":
            return None
        if index > 0:
            raise BadInput("send one file per job (the form has several 'file' parts)")
        return key

    async with MultipartReceiver(
        request, services.store, file_key=file_key, max_file_bytes=limit
    ) as rx:
        form = await rx.receive()
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
            max_active=max_active,
        )
    await enqueue(services, job_id, services.graph.roots)
    return accepted(settings, job_id, "queued")


@router.get("", response_model=list[Job], summary="Recent jobs, newest first")
async def list_jobs(
    jobs: JobStoreDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[Job]:
    return await jobs.list_jobs(limit, owner=principal.owner)


@router.get("/{job_id}", response_model=Job, summary="A job and its stages")
async def get_job(job_id: JobId, jobs: JobStoreDep, principal: PrincipalDep) -> Job:
    return await jobs.get_job(job_id, principal.owner)


@router.delete("/{job_id}", status_code=204, summary="Delete a job, its files and events")
async def delete_job(job_id: JobId, services: ServicesDep, principal: PrincipalDep) -> Response:
    jobs = services.jobs
    await jobs.get_job(job_id, principal.owner)  # 404 before touching anything
    await asyncio.to_thread(services.store.delete_prefix, job_prefix(job_id))
    await jobs.delete_job(job_id, principal.owner)
    await services.bus.delete(job_id)
    await forget_job(services, job_id)
    return Response(status_code=204)


@router.post(
    "/{job_id}/stages/{stage}/replay",
    status_code=202,
    response_model=JobAccepted,
    summary="Run a stage again (and the ones after it), optionally with new parameters",
)
async def replay_stage(
    job_id: JobId,
    stage: str,
    services: ServicesDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    body: ReplayRequest | None = None,
) -> JSONResponse:
    job = await services.jobs.get_job(job_id, principal.owner)
    graph = services.graph
    if stage not in graph:
        raise NotFound(f"unknown stage {stage!r}; stages are {', '.join(graph.names)}")
    busy = Conflict("job is still running; wait for it to finish before replaying a stage")
    if job.status in ("queued", "running"):
        raise busy
    params = None
    if body is not None and body.params:
        params = check_language(merge_params(job.params, body.params))
    await check_active_jobs(services, principal)  # a replay is a job running again
    # One conditional update: of two concurrent replays, one is queued and the other gets 409.
    # A stage declared after the job was made has no row yet.
    await services.jobs.ensure_stage_rows(job_id)
    # Only what depends on the stage runs again (replaying transcribe never re-runs diarize).
    again = list(graph.downstream(stage))
    if not await LeaseStore(services.pool, graph).requeue_if_finished(job_id, again):
        raise busy
    if params is not None:
        await services.jobs.update_params(job_id, params)
    await enqueue(services, job_id, (stage,))
    return accepted(settings, job_id, "queued")
