"""What a job produced: its transcript as people read it (the merged result with the job's
corrections applied: the result and correction routes, the voiceprint and corrections
services), the artifacts behind it, its decoded audio."""

from __future__ import annotations

import asyncio

from core.artifacts import ArtifactRecord, DecodedAudio, MeetingResult
from core.corrections import apply_corrections
from core.errors import Conflict, NotFound
from core.jobs import Job
from gateway.services.container import Services


async def corrected_result(
    services: Services, job_id: str, owner: str | None = None
) -> MeetingResult:
    """The merged result of a succeeded job with the job's corrections applied."""
    job = await services.jobs.get_job(job_id, owner)
    if job.status != "succeeded":
        raise _not_ready(job)
    record = await services.records.current_artifact(
        job_id, services.graph.producer(MeetingResult).name
    )
    if record is None:
        raise NotFound(f"job {job_id} succeeded but has no merged result recorded")
    store = services.store
    result = await asyncio.to_thread(store.get_json, store.key_of(record.uri), MeetingResult)
    corrections = await services.corrections.list_corrections(job_id, owner)
    return apply_corrections(result, corrections, services.graph, basis=record.sha256)


async def artifacts(services: Services, job_id: str, owner: str | None) -> list[ArtifactRecord]:
    """Every artifact of the job with its provenance; NotFound for another tenant's job."""
    await services.jobs.get_job(job_id, owner)
    return await services.records.list_artifacts(job_id, owner)


async def decoded_audio(services: Services, job_id: str, owner: str | None) -> str:
    """The store key of the job's recording as decoded (16 kHz mono WAV). Conflict while
    it is not decoded yet (or the job failed first), NotFound once it is no longer kept."""
    job = await services.jobs.get_job(job_id, owner)
    decode = services.graph.producer(DecodedAudio).name
    record = await services.records.current_artifact(job_id, decode)
    if record is None:
        if job.status == "failed":
            raise Conflict(f"job {job_id} failed before its audio was decoded")
        raise Conflict(f"job {job_id} is {job.status}; its audio is ready once {decode} finishes")
    store = services.store
    decoded = await asyncio.to_thread(store.get_json, store.key_of(record.uri), DecodedAudio)
    key = store.key_of(decoded.audio_uri)
    if not await asyncio.to_thread(store.exists, key):
        raise NotFound(f"the decoded audio of job {job_id} is no longer stored")
    return key


def _not_ready(job: Job) -> Conflict:
    if job.status == "failed":
        stage = job.error.stage if job.error else None
        reason = job.error.message if job.error else "no reason was recorded"
        where = f" at stage {stage!r}" if stage else ""
        return Conflict(f"job {job.id} failed{where}: {reason}. Fix the input or replay the stage.")
    running = [s.stage for s in job.stages if s.status == "running"]
    now = f" (now: {running[0]})" if running else ""
    return Conflict(f"job {job.id} is {job.status}{now}; the result is ready once it succeeds")
