"""Jobs built directly in the stores, the way the stages leave them, so that routes can be
tested over HTTP with no worker and no model running.

`finished_job` stores an upload and the decode, diarize and merge artifacts of a short
two-speaker meeting and records them in the stores; `record_artifact` adds one more
artifact (an identify result, say) to a job; `queued_job` is a job that has only its upload.
`fail_stage` and `succeed_job` end a job the way a worker's last stage does.
`enrolled_speaker` creates a voiceprint row the way the worker's enrollment task does, for
stand-in workers; `module_services` connects and removes the speakers a module enrolled.

A worker changes a stage's state only under its lease (storage/leases.py), which it gets
once the stage's inputs are done. These helpers write the rows a worker leaves without
one, so that a test can put a job in a state no run reaches so quickly (a succeeded merge
with no transcribe recorded, say).
"""

from __future__ import annotations

import contextlib
import io
import uuid
import wave
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from core.artifacts import (
    DecodedAudio,
    Diarization,
    DiarizedSpeaker,
    JobParams,
    MeetingResult,
    ProbeInfo,
    ProvenanceEntry,
    ResultSegment,
    ResultSpeaker,
    ResultWord,
    Turn,
)
from core.jobs import SpeakerGovernance
from core.settings import Settings
from gateway.services import Services
from storage.artifacts import StoredObject, artifact_dir, upload_key

# The embedding model and S1's embedding in a finished job's diarization (S2 has none).
MODEL = "test-encoder@1"
EMBEDDING = [0.6, 0.8, 0.0]


def wav_bytes(seconds: float = 1.0, rate: int = 16000) -> bytes:
    """A 16-bit mono WAV of `seconds` of a (non-silent) sawtooth."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(range(256)) * int(seconds * rate * 2 / 256))
    return buf.getvalue()


@dataclass
class FinishedJob:
    id: str
    audio: bytes
    merge_sha256: str  # "" when the job failed before merge


async def queued_job(services: Services, audio: bytes | None = None) -> str:
    """A queued job: its upload stored and its row created, no stage run yet."""
    job_id = str(uuid.uuid4())
    up = services.store.put_bytes(upload_key(job_id), wav_bytes() if audio is None else audio)
    await services.jobs.create_job(
        job_id=job_id,
        filename="meeting.wav",
        content_type="audio/wav",
        size_bytes=up.size_bytes,
        upload_uri=up.uri,
        upload_sha256=up.sha256,
        params=JobParams(),
    )
    return job_id


async def record_artifact(
    services: Services,
    job_id: str,
    stage: str,
    key: str,
    doc: BaseModel,
    *,
    model: str | None = None,
) -> StoredObject:
    """Store `doc` as the job's `stage` artifact under `key` and mark the stage succeeded."""
    stored = services.store.put_json(f"{artifact_dir(job_id, stage, key)}/artifact.json", doc)
    rec = await services.records.record_artifact(
        job_id=job_id,
        stage=stage,
        key=key,
        uri=stored.uri,
        sha256=stored.sha256,
        size_bytes=stored.size_bytes,
        params={},
        model=model,
        inputs=[],
        started_at=None,
        finished_at=None,
        worker="test",
    )
    async with services.pool.acquire() as conn:
        await conn.execute(
            "UPDATE job_stages SET status = 'succeeded', finished_at = now(), artifact_id = $3,"
            " reused = false WHERE job_id = $1 AND stage = $2",
            uuid.UUID(job_id),
            stage,
            uuid.UUID(rec.id),
        )
    return stored


async def fail_stage(services: Services, job_id: str, stage: str, message: str) -> None:
    """Stage `stage` failed for good, and so did the job; the stages still queued will
    not run in this attempt."""
    jid = uuid.UUID(job_id)
    async with services.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE job_stages SET status = 'failed', finished_at = now(), error = $3"
            " WHERE job_id = $1 AND stage = $2",
            jid,
            stage,
            message,
        )
        await conn.execute(
            "UPDATE job_stages SET status = 'pending' WHERE job_id = $1 AND status = 'queued'",
            jid,
        )
        await conn.execute(
            "UPDATE jobs SET status = 'failed', error_stage = $2, error_message = $3,"
            " finished_at = now(), updated_at = now() WHERE id = $1",
            jid,
            stage,
            message,
        )


async def succeed_job(services: Services, job_id: str) -> None:
    """The job succeeded; its stages not recorded here will not run in this attempt
    (pending, as fail_stage leaves them), so a replay or a reindex may send them and the
    reaper does not take them for lost messages."""
    jid = uuid.UUID(job_id)
    async with services.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE job_stages SET status = 'pending' WHERE job_id = $1 AND status = 'queued'",
            jid,
        )
        await conn.execute(
            "UPDATE jobs SET status = 'succeeded', finished_at = now(), updated_at = now()"
            " WHERE id = $1",
            jid,
        )


async def finished_job(services: Services, *, succeed: bool = True) -> FinishedJob:
    """A succeeded job whose decode, diarize and merge artifacts are stored and recorded:
    S1 says "Hello." and "Bye.", S2 says "Hi.". With `succeed=False` the job fails at
    diarize, after decode."""
    audio = wav_bytes()
    job_id = await queued_job(services, audio)
    wav = services.store.put_bytes(f"{artifact_dir(job_id, 'decode', 'k1')}/audio.wav", audio)
    decoded = DecodedAudio(
        audio_uri=wav.uri,
        audio_sha256=wav.sha256,
        num_samples=16000,
        duration_s=1.0,
        source=ProbeInfo(format="wav"),
    )
    await record_artifact(services, job_id, "decode", "k1", decoded)
    if not succeed:
        await fail_stage(services, job_id, "diarize", "the audio has no speech")
        return FinishedJob(job_id, audio, "")

    turns = [Turn(start=0.0, end=0.5, speaker="S1"), Turn(start=0.5, end=1.0, speaker="S2")]
    diarization = Diarization(
        turns=turns,
        exclusive_turns=turns,
        speakers=[
            DiarizedSpeaker(label="S1", talk_time_s=0.5, embedding=EMBEDDING),
            DiarizedSpeaker(label="S2", talk_time_s=0.5, embedding=None),
        ],
        embedding_model=MODEL,
    )
    diarized = await record_artifact(services, job_id, "diarize", "k2", diarization)

    def seg(start: float, speaker: str, text: str) -> ResultSegment:
        word = ResultWord(
            start=start, end=start + 0.2, word=f" {text}", probability=0.9, speaker=speaker
        )
        return ResultSegment(start=start, end=start + 0.2, speaker=speaker, text=text, words=[word])

    result = MeetingResult(
        job_id=job_id,
        duration_s=1.0,
        language="en",
        speakers=[ResultSpeaker(id="S1", talk_time_s=0.5), ResultSpeaker(id="S2", talk_time_s=0.5)],
        segments=[seg(0.0, "S1", "Hello."), seg(0.5, "S2", "Hi."), seg(0.8, "S1", "Bye.")],
        provenance={"diarize": ProvenanceEntry(uri="x", sha256=diarized.sha256)},
    )
    merged = await record_artifact(services, job_id, "merge", "k3", result)
    await succeed_job(services, job_id)
    return FinishedJob(job_id, audio, merged.sha256)


async def enrolled_speaker(
    services: Services,
    speaker_id: str,
    name: str,
    clip_keys: list[str],
    governance: dict[str, Any],
    *,
    model: str,
    embedding: Sequence[float],
) -> dict[str, Any]:
    """What the enrollment task returns, the row created as it creates it (owner, consent
    and expiry from the gateway's `governance`), with a given embedding instead of a model's."""
    rules = SpeakerGovernance.model_validate(governance)
    speaker = await services.speakers.create_speaker(
        name=name,
        model=model,
        embedding=embedding,
        speaker_id=speaker_id,
        clip_uris=[services.store.uri(k) for k in clip_keys],
        owner=rules.owner,
        consent=rules.consent(),
        expires_at=rules.expires_at,
    )
    return speaker.model_dump(mode="json")


@contextlib.asynccontextmanager
async def module_services(settings: Settings) -> AsyncIterator[Services]:
    """Services for a test module; on the way out, the speakers it enrolled are deleted
    (the session database is shared with other modules, which expect no speakers)."""
    svc = await Services.connect(settings)
    before = {s.id for s in await svc.speakers.list_speakers()}
    try:
        yield svc
    finally:
        for s in await svc.speakers.list_speakers():
            if s.id not in before:
                await svc.speakers.delete_speaker(s.id)
        await svc.close()
