"""What a job produces: the transcript (with its corrections), the artifacts behind it,
the decoded audio (gateway/services/transcripts.py). Its live progress is in
gateway/routes/events.py."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse

from core.artifacts import ArtifactRecord, MeetingResult
from gateway.http.deps import JobId, PrincipalDep, ServicesDep
from gateway.http.ranges import ranged_stream
from gateway.services import transcripts

router = APIRouter(prefix="/v1/jobs", tags=["results"])

ResultFormat = Literal["json", "srt", "vtt", "txt"]


@router.get(
    "/{job_id}/result",
    summary="The speaker-attributed transcript as JSON, SRT, WebVTT or plain text",
    responses={
        200: {
            # The JSON form's shape, for the page's generated API types.
            "model": MeetingResult,
            "content": {"text/plain": {}, "text/vtt": {}, "application/x-subrip": {}},
        }
    },
)
async def job_result(
    job_id: JobId,
    services: ServicesDep,
    principal: PrincipalDep,
    fmt: Annotated[ResultFormat, Query(alias="format")] = "json",
) -> Response:
    result = await transcripts.corrected_result(services, job_id, principal.owner)
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
    job_id: JobId, services: ServicesDep, principal: PrincipalDep
) -> list[ArtifactRecord]:
    return await transcripts.artifacts(services, job_id, principal.owner)


@router.get(
    "/{job_id}/audio",
    summary="The recording as decoded (16 kHz mono WAV), seekable with Range requests",
    responses={200: {"content": {"audio/wav": {}}}, 206: {"description": "a byte range"}},
    response_class=Response,
)
async def job_audio(
    job_id: JobId,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    token: Annotated[
        str | None, Query(description="a stream token, for clients that cannot send headers")
    ] = None,
) -> Response:
    key = await transcripts.decoded_audio(services, job_id, principal.owner)
    store = services.store
    if store.is_local:
        return FileResponse(
            store.path(key),
            media_type="audio/wav",
            filename=f"{job_id}.wav",
            content_disposition_type="inline",
            headers={"Cache-Control": "no-cache"},
        )
    return ranged_stream(store, key, request.headers.get("range"))
