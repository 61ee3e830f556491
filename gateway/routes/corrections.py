"""Corrections to a job's result: rename a speaker (optionally remembering their voice),
reassign a segment or words, fix text; list them, undo one. What each does is in
gateway/services/corrections.py and (renaming) gateway/services/voiceprints.py.

Corrections are records of their own (the stage artifacts stay as the models made them);
the result route applies them on every read, so one rename shows in every format.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from core.artifacts import ResultSpeaker
from core.corrections import Correction
from gateway.http.deps import JobId, PrincipalDep, ServicesDep, SettingsDep
from gateway.services import corrections, voiceprints
from gateway.services.transcripts import corrected_result
from gateway.services.voiceprints import MAX_CONSENT_BY, MAX_CONSENT_NOTE

router = APIRouter(prefix="/v1/jobs", tags=["corrections"])


class SpeakerRename(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=200, description="what the speaker is called in this job")
    remember: bool = Field(
        default=False,
        description="also enroll this speaker's voice (from this job) so later jobs name them",
    )
    speaker_id: str | None = Field(
        default=None,
        description="an enrolled speaker this is; with `remember`, their voiceprint is updated",
    )
    consent_by: str | None = Field(
        default=None,
        max_length=MAX_CONSENT_BY,
        description="with `remember`: who consented to their voice being kept",
    )
    consent_note: str | None = Field(default=None, max_length=MAX_CONSENT_NOTE)
    expires_at: datetime | None = Field(
        default=None,
        description="with `remember`: delete the voiceprint after this instant",
    )


@router.get(
    "/{job_id}/speakers",
    response_model=list[ResultSpeaker],
    summary="The speakers of a succeeded job, with their names as corrected",
)
async def job_speakers(
    job_id: JobId, services: ServicesDep, principal: PrincipalDep
) -> list[ResultSpeaker]:
    return (await corrected_result(services, job_id, principal.owner)).speakers


@router.patch(
    "/{job_id}/speakers/{label}",
    response_model=ResultSpeaker,
    summary="Name a speaker of a job everywhere in it; optionally remember their voice",
)
async def rename_speaker(
    job_id: JobId,
    label: str,
    body: SpeakerRename,
    services: ServicesDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> ResultSpeaker:
    return await voiceprints.rename_speaker(
        services,
        settings,
        job_id,
        label,
        owner=principal.owner,
        name=body.name,
        remember=body.remember,
        speaker_id=body.speaker_id,
        consent_by=body.consent_by,
        consent_note=body.consent_note,
        expires_at=body.expires_at,
    )


@router.get(
    "/{job_id}/corrections",
    response_model=list[Correction],
    summary="The corrections made to a job's result, oldest first",
)
async def list_corrections(
    job_id: JobId, services: ServicesDep, principal: PrincipalDep
) -> list[Correction]:
    return await corrections.list_corrections(services, job_id, principal.owner)


# ---------------------------------------------------------------- reassign words, fix text


class ReassignBody(BaseModel):
    """Segment `segment` (or its words [word_start, word_end)) was said by `speaker`."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["reassign"]
    segment: int = Field(ge=0, description="index in the result as it reads now")
    speaker: str = Field(min_length=1, max_length=64, description="a speaker label, e.g. S2")
    word_start: int | None = Field(default=None, ge=0)
    word_end: int | None = Field(default=None, ge=1, description="exclusive")


class FixTextBody(BaseModel):
    """Segment `segment` (or only its word `word`) reads `text`."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["fix_text"]
    segment: int = Field(ge=0, description="index in the result as it reads now")
    text: str = Field(min_length=1, max_length=10_000)
    word: int | None = Field(default=None, ge=0)


CorrectionBody = Annotated[ReassignBody | FixTextBody, Field(discriminator="kind")]


@router.post(
    "/{job_id}/corrections",
    status_code=201,
    response_model=Correction,
    summary="Correct a job's result: reassign a segment or words to a speaker, fix text",
)
async def add_correction(
    job_id: JobId, body: CorrectionBody, services: ServicesDep, principal: PrincipalDep
) -> Correction:
    fields: dict[str, Any] = body.model_dump(exclude={"kind"}, exclude_none=True)
    return await corrections.add_correction(services, job_id, body.kind, fields, principal.owner)


@router.delete(
    "/{job_id}/corrections/{correction_id}",
    status_code=204,
    summary="Undo one correction: the result reads as if it had never been made",
)
async def undo_correction(
    job_id: JobId, correction_id: str, services: ServicesDep, principal: PrincipalDep
) -> Response:
    await corrections.undo_correction(services, job_id, correction_id, principal.owner)
    return Response(status_code=204)
