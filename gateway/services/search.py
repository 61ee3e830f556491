"""Search across meetings, gateway side: the operations the routes, the sync loop and the
CLI (through the API) call: search, send a job's embed stage again, reindex. Removing a
deleted job's passages is in gateway/services/index.py (the jobs service calls it).

Who owns the index: the gateway. In the embedded default, Qdrant runs in local mode, which
locks its folder to one process; the gateway is the one long-lived process of which there
is one, while workers are several, spawned and recycled. A search must answer in
milliseconds and never wait in the worker queue behind an hour of transcription. So the
expensive part, embedding every passage, stays on the worker (the embed stage), and the
gateway embeds only the short query and moves the worker's vectors into the index
(gateway/services/search_sync.py). With a Qdrant server (several gateways) the same code
runs, and upserts are idempotent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from gateway.services import jobs
from gateway.services.container import Services
from gateway.services.index import embed_stage
from search.index import SearchHit

MAX_QUERY_CHARS = 500


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
    model): a replay of the embed stage (jobs.replay). When that stage is queued or running,
    or the job is running again, the job is marked and the sync loop sends it once the
    stage is free (what is running may have read the old corrections). True: sent now."""
    stage = embed_stage(services.graph)
    if stage is None:
        return False

    async def sent() -> None:  # the mark, if any, is answered by this run
        await services.search_table.want_resend(job_id, False)

    if not await jobs.replay(services, job_id, stage, on_requeued=sent):
        await services.search_table.want_resend(job_id)
        return False
    return True


async def reindex(services: Services, owner: str | None) -> list[str]:
    """Send the embed stage of every succeeded job of `owner` (jobs made before search
    existed, or after a change of embedding model); returns the jobs sent or marked.
    Unchanged passages and model give the same artifact key: reused, not recomputed."""
    if embed_stage(services.graph) is None:
        return []
    job_ids = await services.search_table.succeeded_jobs(owner)
    for job_id in job_ids:
        await resend_embed(services, job_id)
    return job_ids
