"""What the search index holds of a job, gateway side: which stage feeds it, and removing
a job's passages. Below both the jobs service (deleting a job removes its passages) and
search (gateway/services/search.py, which says why the gateway owns the index), so
neither imports the other's caller.
"""

from __future__ import annotations

import asyncio
import logging

from core.artifacts import SearchPassages
from core.graph import StageGraph
from gateway.services.container import Services
from search.index import IndexedArtifact
from storage.search_index import Indexed

log = logging.getLogger("scribe.search")


def embed_stage(graph: StageGraph) -> str | None:
    """The stage whose artifact the index reads (its output is SearchPassages), if the
    graph has one: found from the declaration, not spelled here."""
    return next((d.name for d in graph if d.output is SearchPassages), None)


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
