"""Voiceprints: what keeping one asks for (consent, an expiry), enrolling one from uploaded
clips, listing and forgetting them (and the sweep of those past their expiry), and naming a
job's speaker, which may enroll or refine a voiceprint from that job's recording. The
speakers and corrections routes call these after parsing and authorising; the CLI could
call them the same way, with Services of its own.

Enrollment from clips runs on a worker (task `scribe.enroll`, by name): the gateway sends
along what only it knows (the owner, the consent given and the expiry), so the row is
complete from its first moment, and waits for the answer, as enrollment is short.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from taskiq.exceptions import TaskiqResultTimeoutError
from taskiq.kicker import AsyncKicker

from core.artifacts import ArtifactRecord, Diarization, Identification, ResultSpeaker
from core.corrections import RENAME_SPEAKER, blend_voiceprints
from core.errors import BadInput, Conflict, NotFound, ScribeError, StageFailed
from core.jobs import Consent, Speaker, SpeakerGovernance
from core.settings import Settings
from gateway.auth import Principal
from gateway.http.errors import InvalidRequest, ServiceUnavailable
from gateway.services.container import Services
from gateway.services.jobs import received_upload
from gateway.services.search import resend_embed
from gateway.services.transcripts import corrected_result
from storage.artifacts import speaker_prefix
from storage.retention import delete_voiceprint_files, sweep_expired_voiceprints

log = logging.getLogger("scribe.voiceprints")

ENROLL_TASK = "scribe.enroll"
ENROLL_TIMEOUT_S = 300
# How long an enrollment's place among the key's jobs outlives a gateway that died holding
# it (storage/limits.py): past the longest wait for the worker's answer.
ENROLL_SLOT_TTL_S = ENROLL_TIMEOUT_S + 60
MAX_CONSENT_BY = 200
MAX_CONSENT_NOTE = 2000
MAX_CLIPS = 20
MAX_NAME = 200


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
    """An expiry from a form field (ISO 8601 date or date-time); blank: none."""
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


# ---------------------------------------------------------------- enrollment from clips


async def enroll(
    services: Services, settings: Settings, request: Request, principal: Principal
) -> Speaker:
    """A speaker enrolled from an uploaded form: `name`, the consent given (`consent_by`,
    `consent_note`), `expires_at`, and one or more clips as `files`. An enrollment counts
    as a job: refused before the clips are read when the key has no room, and its place
    taken, atomically, once they are stored (jobs.received_upload)."""
    speaker_id = str(uuid.uuid4())

    def file_key(field: str, index: int) -> str | None:
        if field != "files":
            return None
        if index >= MAX_CLIPS:
            raise BadInput(f"send at most {MAX_CLIPS} clips")
        return f"{speaker_prefix(speaker_id)}/clip-{index + 1}"

    upload = received_upload(services, settings, request, principal, file_key=file_key)
    async with upload as (rx, form):
        name = form.fields.get("name", "").strip()
        if not name:
            raise InvalidRequest("name: is required (the person's name)")
        if len(name) > MAX_NAME:
            raise InvalidRequest(f"name: is longer than {MAX_NAME} characters")
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
    return speaker


async def enroll_from_clips(
    services: Services,
    *,
    speaker_id: str,
    name: str,
    clip_keys: list[str],
    governance: SpeakerGovernance,
    max_duration_s: float | None,
    max_active: int | None,
) -> Speaker:
    """Have a worker compute the voiceprint of the stored clips and create the speaker
    row; its answer is that row. While it runs, the enrollment counts as one of the key's
    `max_active` unfinished jobs (TooManyJobs, 429, when they are all taken). 503 when no
    worker answers in ENROLL_TIMEOUT_S, StageFailed (stage `enroll`) when the worker
    refuses the clips."""
    async with services.enrollment_slots.held(
        governance.owner, max_active, ttl_s=ENROLL_SLOT_TTL_S
    ):
        kicker: AsyncKicker[Any, Any] = AsyncKicker(ENROLL_TASK, services.broker, labels={})
        task = await kicker.kiq(
            speaker_id,
            name,
            clip_keys,
            governance.model_dump(mode="json"),
            max_duration_s,  # the key's limit holds for clips too
        )
        try:
            result = await task.wait_result(timeout=ENROLL_TIMEOUT_S)
        except TaskiqResultTimeoutError:
            raise ServiceUnavailable(
                f"no worker finished the enrollment within {ENROLL_TIMEOUT_S} s;"
                " is a worker running?"
            ) from None
    if result.is_err:
        raise StageFailed("enroll", _worker_message(result.error))
    try:
        return Speaker.model_validate(result.return_value)
    except ValidationError:
        log.error("enrollment %s: the worker's answer is not a speaker", speaker_id)
        raise StageFailed("enroll", "the worker's answer is not a speaker") from None


def _worker_message(error: BaseException | None) -> str:
    """What a person is told of the worker's refusal. The result backend rebuilds the
    worker's exception from JSON (type and arguments, never code): a ScribeError keeps its
    message; anything else is named by its type."""
    if isinstance(error, ScribeError):
        return error.message
    if error is None:
        return "enrollment failed"
    return f"enrollment failed on the worker ({type(error).__name__}: {error})"


# ---------------------------------------------------------------- listing, forgetting


async def list_speakers(services: Services, owner: str | None) -> list[Speaker]:
    """The owner's enrolled speakers, each marked stale when its voiceprint was made by
    another embedding model than identify's current one."""
    # A graph without an identify stage has no current model: no voiceprint is stale.
    identify = services.graph.find_producer(Identification)
    current = (
        await services.calibration.current_embedding_model(identify.name) if identify else None
    )
    enrolled = await services.speakers.list_speakers(owner)
    if current is None:
        return enrolled
    return [s.model_copy(update={"stale": s.model != current}) for s in enrolled]


async def delete_speaker(services: Services, speaker_id: str, owner: str | None) -> None:
    """Forget a speaker: their clips, then their voiceprint. NotFound (404) for unknown or
    malformed ids, and for another tenant's speaker; 503, with the voiceprint kept, when a
    clip could not be deleted."""
    speakers = services.speakers
    speaker, _ = await speakers.speaker_voiceprint(speaker_id, owner)
    # Clips first, then the row: a failure in between leaves the row, so the delete can be
    # repeated, instead of clips nobody can find any more.
    left = await asyncio.to_thread(delete_voiceprint_files, services.store, speaker)
    if left:
        raise ServiceUnavailable(
            f"{len(left)} enrollment clip(s) could not be deleted; the voiceprint is kept,"
            " try again"
        )
    await speakers.delete_speaker(speaker_id, owner)


async def sweep_expired(services: Services) -> list[str]:
    """Delete the voiceprints past their expiry and their enrollment clips; their ids."""
    return await sweep_expired_voiceprints(services.speakers, services.store)


# ---------------------------------------------------------------- naming a job's speaker


async def rename_speaker(
    services: Services,
    settings: Settings,
    job_id: str,
    label: str,
    *,
    owner: str | None,
    name: str,
    remember: bool = False,
    speaker_id: str | None = None,
    consent_by: str | None = None,
    consent_note: str | None = None,
    expires_at: datetime | None = None,
) -> ResultSpeaker:
    """Name speaker `label` of a succeeded job everywhere in it (a correction), and with
    `remember` also keep their voice from this job: a new voiceprint, or one more recording
    for enrolled speaker `speaker_id`. Returns the speaker as the job now reads."""
    name = name.strip()
    if not name:
        raise InvalidRequest("name: must not be empty")
    if not remember and (consent_by or consent_note or expires_at):
        raise InvalidRequest(
            "consent_by, consent_note and expires_at go with remember: true (they describe"
            " the voiceprint kept)"
        )
    result = await corrected_result(services, job_id, owner)  # 404 / 409 before anything
    if not any(s.id == label for s in result.speakers):
        known = ", ".join(s.id for s in result.speakers) or "none"
        raise NotFound(f"job {job_id} has no speaker {label!r} (its speakers: {known})")
    diarize = await services.records.current_artifact(
        job_id, services.graph.producer(Diarization).name
    )
    if diarize is None:
        raise Conflict(f"job {job_id} has no diarization recorded")

    if speaker_id is not None and not remember:
        await services.speakers.speaker_voiceprint(speaker_id, owner)  # 404 for an unknown person
    if remember:
        speaker_id = await _remember_voice(
            services,
            settings,
            job_id,
            label,
            diarize,
            owner=owner,
            name=name,
            speaker_id=speaker_id,
            consent_by=consent_by,
            consent_note=consent_note,
            expires_at=expires_at,
        )

    payload = {"speaker": label, "name": name, "diarize_sha256": diarize.sha256}
    if speaker_id is not None:
        payload["speaker_id"] = speaker_id
    await services.corrections.add_correction(job_id, RENAME_SPEAKER, payload, owner)
    await resend_embed(services, job_id)  # search shows the new name
    corrected = await corrected_result(services, job_id, owner)
    return next(s for s in corrected.speakers if s.id == label)


async def _remember_voice(
    services: Services,
    settings: Settings,
    job_id: str,
    label: str,
    diarize: ArtifactRecord,
    *,
    owner: str | None,
    name: str,
    speaker_id: str | None,
    consent_by: str | None,
    consent_note: str | None,
    expires_at: datetime | None,
) -> str:
    """Enroll speaker `label` of the job from its diarization's embedding, or blend it into
    enrolled speaker `speaker_id`'s voiceprint; the id of the speaker remembered."""
    speakers, store = services.speakers, services.store
    enrolled_before: Speaker | None = None
    old: list[float] = []
    if speaker_id is not None:
        enrolled_before, old = await speakers.speaker_voiceprint(speaker_id, owner)  # 404
    # Adding a recording's voice to a voiceprint is keeping more of someone's voice:
    # where consent is required, it is asked for again (the voice in this recording may
    # not even be theirs), and the voiceprint records which recording was added.
    consent = consent_from(
        consent_by,
        consent_note,
        required=settings.voiceprint_require_consent,
        prefix=(
            f"adding this voice to {enrolled_before.name}'s voiceprint: "
            if enrolled_before is not None
            else ""
        ),
    )
    expires_at = check_expiry(expires_at)
    diarization = await asyncio.to_thread(store.get_json, store.key_of(diarize.uri), Diarization)
    cluster = next((s for s in diarization.speakers if s.label == label), None)
    if cluster is None or not cluster.embedding or not diarization.embedding_model:
        raise Conflict(
            f"speaker {label} of job {job_id} has no voice embedding to remember"
            " (too little clear speech); the name is not saved"
        )
    model = diarization.embedding_model
    if enrolled_before is None:
        enrolled = await speakers.create_speaker(
            name=name,
            model=model,
            embedding=cluster.embedding,
            clip_uris=[],
            owner=owner,
            source=f"job:{job_id}:{label}",
            consent=consent,
            expires_at=expires_at,
        )
        return enrolled.id
    # Same model: the voiceprint learns from one more recording; another model's
    # embedding is in a different space and is replaced.
    embedding = (
        blend_voiceprints(old, cluster.embedding)
        if enrolled_before.model == model
        else cluster.embedding
    )
    await speakers.update_speaker(
        enrolled_before.id,
        name=name,
        model=model,
        embedding=embedding,
        owner=owner,
        consent=consent,
        expires_at=expires_at,
        added_source=f"job:{job_id}:{label}",
    )
    assert speaker_id is not None  # enrolled_before was looked up by it
    return speaker_id
