"""Search across meetings, gateway side: the operations the routes, the sync loop and the
CLI (through the API) call: search, send a job's embed stage again, reindex, forget a job.

Who owns the index: the gateway. In the embedded default, Qdrant runs in local mode, which
locks its folder to one process; the gateway is the one long-lived process of which there
is one, while workers are several, spawned and recycled. A search must answer in
milliseconds and never wait in the worker queue behind an hour of transcription. So the
expensive part, embedding every passage, stays on the worker (the embed stage), and the
gateway embeds only the short query and moves the worker's vectors into the index
(gateway/services/search_sync.py). With a Qdrant server (several gateways) the same code runs, and
upserts are idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from core.artifacts import SearchPassages
from core.graph import StageGraph
from gateway.services.container import Services, enqueue
from search.index import IndexedArtifact, SearchHit
from storage.leases import LeaseStore
from storage.search_index import Indexed

log = logging.getLogger("scribe.search")

MAX_QUERY_CHARS = 500


def embed_stage(graph: StageGraph) -> str | None:
    """The stage whose artifact the index reads (its output is SearchPassages), if the
    graph has one: found from the declaration, not spelled here."""
    return next((d.name for d in graph if d.output is SearchPassages), None)


@dataclass(frozen=True)
class Found:
    model: str
    hits: list[SearchHit]


async def search(
    services: Services,
    query: str,
    *,
    owner: str | None,
    limit: int = 10,
    job_id: str | None = None,
    speaker: str | None = None,
    after: datetime | None = None,
    before: datetime | None = None,
) -> Found:
    """The passages nearest to `query` among the owner's meetings (every meeting's with
    `owner` None: auth off, the single user, as the job list)."""
    engine = services.search

    def run() -> Found:
        embedder = engine.embedder()
        vector = embedder.embed_query(query)
        hits = engine.index().query(
            embedder.model_id,
            vector,
            owner=owner,
            job_id=job_id,
            speaker=speaker,
            after=after,
            before=before,
            limit=limit,
        )
        return Found(embedder.model_id, hits)

    return await asyncio.to_thread(run)


async def resend_embed(services: Services, job_id: str) -> bool:
    """Embed a succeeded job's passages again (a rename, a text fix, a new embedding
    model), as a replay of the embed stage does. When that stage is queued or running,
    or the job is running again, the job is marked and the sync loop sends it once the
    stage is free (what is running may have read the old corrections). True: sent now."""
    stage = embed_stage(services.graph)
    if stage is None:
        return False
    await services.jobs.ensure_stage_rows(job_id)
    again = list(services.graph.downstream(stage))
    if not await LeaseStore(services.pool, services.graph).requeue_if_finished(job_id, again):
        await services.search_table.want_resend(job_id)
        return False
    await services.search_table.want_resend(job_id, False)
    await enqueue(services, job_id, (stage,))
    return True


async def reindex(services: Services, owner: str | None) -> list[str]:
    """Send the embed stage of every succeeded job of `owner` (jobs made before search
    existed, or after a change of embedding model); returns the jobs sent or marked.
    Unchanged passages and model give the same artifact key: reused, not recomputed."""
    if embed_stage(services.graph) is None:
        return []
    jobs = await services.search_table.succeeded_jobs(owner)
    for job_id in jobs:
        await resend_embed(services, job_id)
    return jobs


async def forget_job(services: Services, job_id: str) -> None:
    """Remove a deleted job's passages from the index, by job id in every collection:
    whatever the `search_index` table says of it (nothing, when an upsert failed half-way
    or is still running). Best effort: the job's row there, which deleting the job leaves
    (JobStore.delete_job), has the sync loop's next pass remove them again, after any
    upsert in flight now has written what it writes (gateway/services/search_sync.py)."""
    try:
        await asyncio.to_thread(services.search.index().delete_job, job_id)
    except Exception:
        log.exception("could not remove job %s from the search index; retrying later", job_id)


async def forget_gone(services: Services, job_id: str) -> None:
    """For the sync loop, a job that no longer exists: its passages out of the index by
    job id, then its row (which is how the loop found it)."""
    await asyncio.to_thread(services.search.index().delete_job, job_id)
    await services.search_table.forget(job_id)


def artifact_of(indexed: Indexed | None) -> IndexedArtifact | None:
    if indexed is None:
        return None
    return IndexedArtifact(indexed.model_id, indexed.artifact_id, indexed.passages)
