"""Searchable meetings built in the stores for the security tests: a succeeded job of a
tenant whose embed artifact holds the given lines, embedded by the gateway's own text
embedder (the real e5-small) exactly as the embed stage stores it, and not yet in the
index; `index_directly` then writes its passages into the index without telling the
`search_index` table, as an upsert that failed half-way or is still running leaves it."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import numpy as np

from core.artifacts import MeetingResult, ResultSegment, ResultSpeaker, SearchPassages
from gateway.services import Services
from search.embedder import vectors_to_bytes
from search.index import IndexedJob
from search.passages import cut_passages
from storage.artifacts import artifact_dir
from tests.integration.stored_jobs import finished_job, record_artifact
from tests.tenants import Tenant


@dataclass
class Meeting:
    job_id: str
    file_name: str
    artifact_id: str
    doc: SearchPassages
    vectors: np.ndarray


async def embedded_meeting(
    services: Services, tenant: Tenant, lines: list[str], *, file_name: str = "meeting.wav"
) -> Meeting:
    """A succeeded job of `tenant` called `file_name`, one speaker turn per line (S1 and
    S2 in turn: one passage each), with its embed stage succeeded and recorded (nothing
    indexed)."""
    job = await finished_job(services)
    async with services.pool.acquire() as conn:
        await conn.execute(
            "UPDATE jobs SET owner = $2, filename = $3 WHERE id = $1",
            uuid.UUID(job.id),
            uuid.UUID(tenant.id),
            file_name,
        )
    speakers = [
        ResultSpeaker(id="S1", name="Ada", talk_time_s=1.0),
        ResultSpeaker(id="S2", talk_time_s=1.0),
    ]
    segments = [
        ResultSegment(start=10.0 * i, end=10.0 * i + 8, speaker=f"S{i % 2 + 1}", text=text,
                      words=[])
        for i, text in enumerate(lines)
    ]  # fmt: skip
    result = MeetingResult(
        job_id=job.id, duration_s=10.0 * len(lines), language="en", speakers=speakers,
        segments=segments,
    )  # fmt: skip
    passages = cut_passages(result)
    embedder = await asyncio.to_thread(services.search.embedder)
    vectors = await asyncio.to_thread(embedder.embed_passages, [p.text for p in passages])
    key = uuid.uuid4().hex
    stored = services.store.put_bytes(
        f"{artifact_dir(job.id, 'embed', key)}/vectors.npy", vectors_to_bytes(vectors)
    )
    doc = SearchPassages(
        job_id=job.id,
        model=embedder.model_id,
        dim=int(vectors.shape[1]),
        vectors_uri=stored.uri,
        vectors_sha256=stored.sha256,
        passages=passages,
    )
    await record_artifact(services, job.id, "embed", key, doc, model=embedder.model_id)
    record = await services.records.current_artifact(job.id, "embed")
    assert record is not None
    return Meeting(job.id, file_name, record.id, doc, vectors)


async def index_directly(services: Services, meeting: Meeting, tenant: Tenant) -> int:
    """The meeting's passages written into the index, the `search_index` table untold."""
    job = IndexedJob(meeting.job_id, tenant.id, meeting.file_name)
    index = services.search.index()
    return await asyncio.to_thread(
        index.upsert_job,
        job,
        meeting.doc.passages,
        meeting.vectors,
        model_id=meeting.doc.model,
        artifact_id=meeting.artifact_id,
    )
