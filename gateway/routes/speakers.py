"""Enrolled speakers (voiceprints): enroll from clips, list, delete.

The gateway stores the clips, then a worker computes the voiceprint and creates the row
(gateway/services/voiceprints.py, `enroll_from_clips`).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from core.artifacts import Identification
from core.errors import BadInput
from core.jobs import Speaker, SpeakerGovernance
from gateway.http.deps import (
    CalibrationStoreDep,
    GraphDep,
    PrincipalDep,
    ServicesDep,
    SettingsDep,
    SpeakerStoreDep,
    StoreDep,
)
from gateway.http.errors import InvalidRequest, ServiceUnavailable
from gateway.http.multipart import MultipartReceiver, check_content_length
from gateway.routes.jobs import check_active_jobs, upload_limit
from gateway.services.voiceprints import check_expiry, consent_from, enroll_from_clips
from storage.artifacts import speaker_prefix
from storage.retention import delete_voiceprint_files

router = APIRouter(prefix="/v1/speakers", tags=["speakers"])

MAX_CLIPS = 20


def parse_expiry(text: str | None) -> datetime | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"expires_at: {text[:50]!r} is not an ISO 8601 date or time"
            " (e.g. 2027-01-31 or 2027-01-31T12:00:00Z)"
        ) from None
    return check_expiry(value)


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
                        "consent_by": {
                            "type": "string",
                            "description": "who consented to their voice being kept",
                        },
                        "consent_note": {"type": "string"},
                        "expires_at": {
                            "type": "string",
                            "format": "date-time",
                            "description": "delete the voiceprint and its clips after this",
                        },
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
    # An enrollment counts as a job: refused before the clips are read when the key has
    # no room, and its place taken, atomically, once they are stored.
    await check_active_jobs(services, principal)
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
        consent = consent_from(
            form.fields.get("consent_by"),
            form.fields.get("consent_note"),
            required=settings.voiceprint_require_consent,
        )
        expires_at = parse_expiry(form.fields.get("expires_at"))
        if not form.files:
            raise BadInput("the form has no 'files' field; attach one or more clips as 'files'")
        stored = await rx.commit()
        # Any error below leaves the `async with` and so deletes the stored clips.
        speaker = await enroll_from_clips(
            services,
            speaker_id=speaker_id,
            name=name,
            clip_keys=[s.key for s in stored],
            governance=SpeakerGovernance.of(principal.owner, consent, expires_at),
            max_duration_s=principal.max_duration_s,
            max_active=principal.max_concurrent_jobs,
        )
    return JSONResponse(
        speaker.model_dump(mode="json"),
        status_code=201,
        headers={"Location": f"/v1/speakers/{speaker.id}"},
    )


@router.get("", response_model=list[Speaker], summary="Enrolled speakers")
async def list_speakers(
    speakers: SpeakerStoreDep,
    calibration: CalibrationStoreDep,
    graph: GraphDep,
    principal: PrincipalDep,
) -> list[Speaker]:
    # A graph without an identify stage has no current model: no voiceprint is stale.
    identify = graph.find_producer(Identification)
    current = await calibration.current_embedding_model(identify.name) if identify else None
    enrolled = await speakers.list_speakers(principal.owner)
    if current is None:
        return enrolled
    return [s.model_copy(update={"stale": s.model != current}) for s in enrolled]


@router.delete(
    "/{speaker_id}", status_code=204, summary="Forget a speaker: their voiceprint and clips"
)
async def delete_speaker(
    speaker_id: str, speakers: SpeakerStoreDep, store: StoreDep, principal: PrincipalDep
) -> Response:
    # NotFound (404) for unknown or malformed ids, and for another tenant's speaker
    speaker, _ = await speakers.speaker_voiceprint(speaker_id, principal.owner)
    # Clips first, then the row: a failure in between leaves the row, so the delete can be
    # repeated, instead of clips nobody can find any more.
    left = await asyncio.to_thread(delete_voiceprint_files, store, speaker)
    if left:
        raise ServiceUnavailable(
            f"{len(left)} enrollment clip(s) could not be deleted; the voiceprint is kept,"
            " try again"
        )
    await speakers.delete_speaker(speaker_id, principal.owner)
    return Response(status_code=204)
