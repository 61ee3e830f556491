"""A job's summary, gateway side: the summarize stage's artifact with each citation's
moment (start, end, speaker as the transcript reads now) and the owners of action items
by their current names, so a rename shows at once, before the stage has run again."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from core.artifacts import MeetingResult, Summary
from core.errors import NotFound
from gateway.services.container import Services
from gateway.services.transcripts import corrected_result


@dataclass(frozen=True)
class Moment:
    segment: int
    start: float
    end: float
    speaker: str  # the name as corrected, else the label


@dataclass(frozen=True)
class JobSummary:
    status: str  # the summarize stage's: pending, queued, running, succeeded, failed
    error: str | None
    summary: Summary | None
    moments: dict[int, Moment]  # every cited segment, by index


def summary_stage(services: Services) -> str | None:
    found = services.graph.find_producer(Summary)
    return found.name if found else None


def moments_of(result: MeetingResult, segments: set[int]) -> dict[int, Moment]:
    names = {s.id: s.name or s.id for s in result.speakers}
    out: dict[int, Moment] = {}
    for i in sorted(segments):
        if 0 <= i < len(result.segments):
            seg = result.segments[i]
            out[i] = Moment(i, seg.start, seg.end, names.get(seg.speaker, seg.speaker))
    return out


async def job_summary(services: Services, job_id: str, owner: str | None) -> JobSummary:
    """The job's summary as it reads now; NotFound for another tenant's job or a graph
    without a summarize stage. While the stage runs again (after a rename) the last
    summary is given with the stage's status."""
    job = await services.jobs.get_job(job_id, owner)
    stage = summary_stage(services)
    if stage is None:
        raise NotFound("this server's stage graph makes no summaries")
    row = next((s for s in job.stages if s.stage == stage), None)
    status = row.status if row else "pending"
    error = row.error if row else None
    record = await services.records.current_artifact(job_id, stage)
    if record is None or job.status != "succeeded":
        return JobSummary(status, error, None, {})
    store = services.store
    doc = await asyncio.to_thread(store.get_json, store.key_of(record.uri), Summary)
    result = await corrected_result(services, job_id, owner)
    names = {s.id: s.name or s.id for s in result.speakers}
    for item in doc.action_items:
        if item.owner_speaker is not None:
            item.owner = names.get(item.owner_speaker, item.owner)
    cited = {i for p in [*doc.summary, *doc.decisions] for i in p.segments}
    cited |= {i for a in doc.action_items for i in a.segments}
    return JobSummary(status, error, doc, moments_of(result, cited))
