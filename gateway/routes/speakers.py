"""Enrolled speakers (voiceprints): enroll from clips, list, delete.

The gateway stores the clips, then a worker computes the voiceprint and creates the row;
what each route does is in gateway/services/voiceprints.py.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from core.jobs import Speaker
from gateway.http.deps import PrincipalDep, ServicesDep, SettingsDep
from gateway.services import voiceprints

router = APIRouter(prefix="/v1/speakers", tags=["speakers"])


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
    speaker = await voiceprints.enroll(services, settings, request, principal)
    return JSONResponse(
        speaker.model_dump(mode="json"),
        status_code=201,
        headers={"Location": f"/v1/speakers/{speaker.id}"},
    )


@router.get("", response_model=list[Speaker], summary="Enrolled speakers")
async def list_speakers(services: ServicesDep, principal: PrincipalDep) -> list[Speaker]:
    return await voiceprints.list_speakers(services, principal.owner)


@router.delete(
    "/{speaker_id}", status_code=204, summary="Forget a speaker: their voiceprint and clips"
)
async def delete_speaker(
    speaker_id: str, services: ServicesDep, principal: PrincipalDep
) -> Response:
    await voiceprints.delete_speaker(services, speaker_id, principal.owner)
    return Response(status_code=204)
