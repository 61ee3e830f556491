"""A job's transcript as people read it: the merged result with the job's corrections
applied. Used by the result and correction routes and by the voiceprint service, so it
lives beside them rather than in one route module."""

from __future__ import annotations

import asyncio

from core.artifacts import MeetingResult
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


def _not_ready(job: Job) -> Conflict:
    if job.status == "failed":
        stage = job.error.stage if job.error else None
        reason = job.error.message if job.error else "no reason was recorded"
        where = f" at stage {stage!r}" if stage else ""
        return Conflict(f"job {job.id} failed{where}: {reason}. Fix the input or replay the stage.")
    running = [s.stage for s in job.stages if s.status == "running"]
    now = f" (now: {running[0]})" if running else ""
    return Conflict(f"job {job.id} is {job.status}{now}; the result is ready once it succeeds")
