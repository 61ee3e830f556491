"""Jobs: upload (create), look up, list, delete, replay a stage. What each does is in
gateway/services/jobs.py; these translate HTTP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from core.jobs import Job
from core.settings import Settings
from gateway.http.deps import (
    JobId,
    JobStoreDep,
    PrincipalDep,
    ServicesDep,
    SettingsDep,
)
from gateway.services import jobs as job_service

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
    job_id = await job_service.create(services, settings, request, principal)
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
    await job_service.delete(services, job_id, principal.owner)
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
    overrides = body.params if body is not None else None
    await job_service.replay_stage(services, principal, job_id, stage, overrides)
    return accepted(settings, job_id, "queued")
