"""Enrolled speakers (voiceprints): enroll from clips, list, delete.

The gateway stores the clips and asks a worker (task `scribe.enroll`, by name) to compute
the voiceprint and create the row; it waits for the answer, as enrollment is short.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from taskiq.exceptions import TaskiqResultTimeoutError
from taskiq.kicker import AsyncKicker

from core.errors import BadInput, StageFailed
from core.jobs import Speaker
from gateway.deps import JobStoreDep, PrincipalDep, ServicesDep, SettingsDep, StoreDep
from gateway.errors import InvalidRequest, ServiceUnavailable
from gateway.multipart import MultipartReceiver, check_content_length
from gateway.routes.jobs import upload_limit

router = APIRouter(prefix="/v1/speakers", tags=["speakers"])

ENROLL_TASK = "scribe.enroll"
ENROLL_TIMEOUT_S = 300
MAX_CLIPS = 20


def speaker_prefix(speaker_id: str) -> str:
    return f"speakers/{speaker_id}"


_ENROLL_FORM: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["name", "files"],
                    "properties": {
                        "name": {"type": "string"},
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=Speaker,
    summary="Enroll a speaker from one or more clips of their voice",
    openapi_extra=_ENROLL_FORM,
)
async def enroll_speaker(
    request: Request, services: ServicesDep, settings: SettingsDep, principal: PrincipalDep
) -> JSONResponse:
    limit = upload_limit(settings, principal)
    check_content_length(request, limit)
    speaker_id = str(uuid.uuid4())

    def file_key(field: str, index: int) -> str | None:
        if field != "files":
            return None
        if index >= MAX_CLIPS:
            raise BadInput(f"send at most {MAX_CLIPS} clips")
        return f"{speaker_prefix(speaker_id)}/clip-{index + 1}"

    async with MultipartReceiver(
        request, services.store, file_key=file_key, max_file_bytes=limit
    ) as rx:
        form = await rx.receive()
        name = form.fields.get("name", "").strip()
        if not name:
            raise InvalidRequest("name: is required (the person's name)")
        if len(name) > 200:
            raise InvalidRequest("name: is longer than 200 characters")
        if not form.files:
            raise BadInput("the form has no 'files' field; attach one or more clips as 'files'")
        stored = await rx.commit()
        clip_keys = [s.key for s in stored]
        # Any error below leaves the `async with` and so deletes the stored clips.
        kicker: AsyncKicker[Any, dict[str, Any]] = AsyncKicker(
            ENROLL_TASK, services.broker, labels={}
        )
        task = await kicker.kiq(speaker_id, name, clip_keys)
        try:
            result = await task.wait_result(timeout=ENROLL_TIMEOUT_S)
        except TaskiqResultTimeoutError:
            raise ServiceUnavailable(
                f"no worker finished the enrollment within {ENROLL_TIMEOUT_S} s;"
                " is a worker running?"
            ) from None
        if result.is_err:
            err = result.error
            message = getattr(err, "message", None) or str(err) or "enrollment failed"
            raise StageFailed("enroll", message)
    speaker = Speaker.model_validate(result.return_value)
    if principal.owner is not None:
        # The worker creates the row; the gateway, which knows the caller, gives it its owner.
        await services.jobs.set_speaker_owner(speaker.id, principal.owner)
    return JSONResponse(
        speaker.model_dump(mode="json"),
        status_code=201,
        headers={"Location": f"/v1/speakers/{speaker.id}"},
    )


@router.get("", response_model=list[Speaker], summary="Enrolled speakers")
async def list_speakers(jobs: JobStoreDep, principal: PrincipalDep) -> list[Speaker]:
    current = await jobs.current_embedding_model()
    speakers = await jobs.list_speakers(principal.owner)
    if current is None:
        return speakers
    return [s.model_copy(update={"stale": s.model != current}) for s in speakers]


@router.delete("/{speaker_id}", status_code=204, summary="Forget a speaker and their clips")
async def delete_speaker(
    speaker_id: str, jobs: JobStoreDep, store: StoreDep, principal: PrincipalDep
) -> Response:
    # NotFound (404) for unknown or malformed ids, and for another tenant's speaker
    await jobs.delete_speaker(speaker_id, principal.owner)
    await asyncio.to_thread(store.delete_prefix, speaker_prefix(speaker_id))
    return Response(status_code=204)
