"""Enrolled speakers (voiceprints): enroll from clips, list, delete.

The gateway stores the clips and asks a worker (task `scribe.enroll`, by name) to compute
the voiceprint and create the row, sending along what only the gateway knows (the owner,
the consent given in the form and the expiry), so the row is complete from its first
moment; it waits for the answer, as enrollment is short.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from taskiq.exceptions import TaskiqResultTimeoutError
from taskiq.kicker import AsyncKicker

from core.errors import BadInput, StageFailed
from core.jobs import Consent, Speaker, SpeakerGovernance
from gateway.deps import JobStoreDep, PrincipalDep, ServicesDep, SettingsDep, StoreDep
from gateway.errors import InvalidRequest, ServiceUnavailable
from gateway.multipart import MultipartReceiver, check_content_length
from gateway.routes.jobs import upload_limit
from storage.artifacts import speaker_prefix
from storage.retention import delete_voiceprint_files

router = APIRouter(prefix="/v1/speakers", tags=["speakers"])

ENROLL_TASK = "scribe.enroll"
ENROLL_TIMEOUT_S = 300
MAX_CLIPS = 20
MAX_CONSENT_BY = 200
MAX_CONSENT_NOTE = 2000


def consent_from(
    consent_by: str | None, consent_note: str | None, *, required: bool, prefix: str = ""
) -> Consent | None:
    """The consent a request records (consent_at: now), or None when it names nobody;
    422 when consent is `required` (voiceprint_require_consent) and none is given."""
    by = (consent_by or "").strip()
    note = (consent_note or "").strip() or None
    if len(by) > MAX_CONSENT_BY:
        raise InvalidRequest(f"{prefix}consent_by: is longer than {MAX_CONSENT_BY} characters")
    if note is not None and len(note) > MAX_CONSENT_NOTE:
        raise InvalidRequest(f"{prefix}consent_note: is longer than {MAX_CONSENT_NOTE} characters")
    if not by:
        if required:
            raise InvalidRequest(
                f"{prefix}consent_by: is required: this server keeps a voiceprint only with"
                " the consent of the person it belongs to; give who consented in consent_by"
                " (and optionally consent_note)"
            )
        if note is not None:
            raise InvalidRequest(f"{prefix}consent_note: needs consent_by (who consented)")
        return None
    return Consent(by=by, at=datetime.now(UTC), note=note)


def check_expiry(expires_at: datetime | None, *, prefix: str = "") -> datetime | None:
    """An expiry in the future, with a time zone (none given: UTC)."""
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    if expires_at <= datetime.now(UTC):
        raise InvalidRequest(f"{prefix}expires_at: is in the past")
    return expires_at


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
        clip_keys = [s.key for s in stored]
        # Any error below leaves the `async with` and so deletes the stored clips.
        kicker: AsyncKicker[Any, dict[str, Any]] = AsyncKicker(
            ENROLL_TASK, services.broker, labels={}
        )
        governance = SpeakerGovernance.of(principal.owner, consent, expires_at)
        task = await kicker.kiq(
            speaker_id,
            name,
            clip_keys,
            governance.model_dump(mode="json"),
            principal.max_duration_s,  # the key's limit holds for clips too
        )
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


@router.delete(
    "/{speaker_id}", status_code=204, summary="Forget a speaker: their voiceprint and clips"
)
async def delete_speaker(
    speaker_id: str, jobs: JobStoreDep, store: StoreDep, principal: PrincipalDep
) -> Response:
    # NotFound (404) for unknown or malformed ids, and for another tenant's speaker
    speaker, _ = await jobs.speaker_voiceprint(speaker_id, principal.owner)
    # Clips first, then the row: a failure in between leaves the row, so the delete can be
    # repeated, instead of clips nobody can find any more.
    left = await asyncio.to_thread(delete_voiceprint_files, store, speaker)
    if left:
        raise ServiceUnavailable(
            f"{len(left)} enrollment clip(s) could not be deleted; the voiceprint is kept,"
            " try again"
        )
    await jobs.delete_speaker(speaker_id, principal.owner)
    return Response(status_code=204)
