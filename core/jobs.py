"""Jobs and their stages, as the job store records them and the API shows them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from core.artifacts import JobParams

JobStatus = Literal["queued", "running", "succeeded", "failed"]
StageStatus = Literal["pending", "queued", "running", "succeeded", "failed"]


class JobError(BaseModel):
    stage: str | None
    message: str


class StageState(BaseModel):
    stage: str
    status: StageStatus
    artifact_id: str | None = None
    reused: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    elapsed_s: float | None = None
    attempts: int = 0
    worker: str | None = None
    error: str | None = None


class Job(BaseModel):
    id: str
    status: JobStatus
    filename: str | None = None
    content_type: str | None = None
    size_bytes: int
    # Where the upload is stored: a server path or bucket key, never shown to clients.
    upload_uri: str = Field(exclude=True)
    upload_sha256: str
    params: JobParams = Field(default_factory=JobParams)
    duration_s: float | None = None
    language: str | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: JobError | None = None
    stages: list[StageState] = Field(default_factory=list)
    # The tenant the job belongs to (None: the single-user owner), and the duration limit
    # of the key that created it; internal, never shown.
    owner: str | None = Field(default=None, exclude=True)
    max_duration_s: float | None = Field(default=None, exclude=True)


@dataclass(frozen=True)
class Consent:
    """Who agreed to their voice being kept as a voiceprint, when, and a free note."""

    by: str
    at: datetime
    note: str | None = None


class SpeakerGovernance(BaseModel):
    """What the gateway knows of a new voiceprint and the worker does not: whose it is, the
    consent given and when it expires. Sent with the enrollment task, so the worker creates
    the row complete: no moment where it has no owner, and nothing to finish if the gateway
    goes away before the worker answers."""

    owner: str | None = None
    consent_by: str | None = None
    consent_at: datetime | None = None
    consent_note: str | None = None
    expires_at: datetime | None = None

    @classmethod
    def of(
        cls, owner: str | None, consent: Consent | None, expires_at: datetime | None
    ) -> SpeakerGovernance:
        if consent is None:
            return cls(owner=owner, expires_at=expires_at)
        return cls(
            owner=owner,
            consent_by=consent.by,
            consent_at=consent.at,
            consent_note=consent.note,
            expires_at=expires_at,
        )

    def consent(self) -> Consent | None:
        if self.consent_by is None or self.consent_at is None:
            return None
        return Consent(by=self.consent_by, at=self.consent_at, note=self.consent_note)


class Speaker(BaseModel):
    """An enrolled person and their voiceprint (embedding kept out of API answers)."""

    id: str
    name: str
    model: str
    num_clips: int
    # Where the clips are stored (server paths), never shown to clients.
    clip_uris: list[str] = Field(default_factory=list, exclude=True)
    created_at: datetime
    # Governance: who consented to the voice being kept, when, and a note (e.g. "signed
    # form 2026-03"); where the voiceprint came from ("clips" or "job:<job id>:<label>");
    # when it stops being used and is deleted with its clips. None: not recorded / never.
    consent_by: str | None = None
    consent_at: datetime | None = None
    consent_note: str | None = None
    source: str | None = None
    expires_at: datetime | None = None
    # Made by another embedding model than the one identify now uses: ignored until the
    # person is enrolled again (the listing sets it; False when no identify ran yet).
    stale: bool = False
