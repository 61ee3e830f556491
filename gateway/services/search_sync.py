"""The gateway's index sync: a lifespan task that keeps the search index in step with the
embed artifacts in PostgreSQL (the gateway owns the index; gateway/services/search.py says why).

Every `search.sync_interval_s` it
- upserts the passages of jobs whose current embed artifact is not the indexed one (a new
  job, a rename or a text fix, a replay, a new embedding model), which also drops that
  job's points of older artifacts;
- removes, by job id, the points of jobs that are gone: deleting a job (the route and
  retention) removes them at once and leaves the job's row, so this pass removes them
  again after an upsert that was in flight then, or that failed half-way, and catches
  what the first removal could not;
- sends the embed stage of jobs marked for it while that stage was busy.
State lives in PostgreSQL (`search_index`), so after a gateway restart the loop catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from core.artifacts import SearchPassages
from gateway.services.container import Services
from gateway.services.index import artifact_of, embed_stage, forget_gone
from gateway.services.search import resend_embed
from search.embedder import vectors_from_bytes
from search.index import IndexedJob
from storage.search_index import ToIndex

log = logging.getLogger("scribe.search")


async def sync_once(services: Services) -> int:
    """One pass; returns how many jobs it indexed."""
    table = services.search_table
    for job_id in await table.gone():
        try:
            await forget_gone(services, job_id)
        except Exception:  # its row stays: the next pass tries again
            log.exception("search: could not remove the passages of deleted job %s", job_id)
    stage = embed_stage(services.graph)
    if stage is None:
        return 0
    indexed = 0
    for item in await table.to_index(stage):
        try:
            model, count = await asyncio.to_thread(_index_one, services, item)
        except Exception:  # one bad artifact must not hold up the others
            log.exception("search: could not index job %s", item.job_id)
            # It may have written some of the points. The job has a row from now on, so
            # if it is deleted meanwhile, the pass after finds it gone and removes them.
            await table.touch(item.job_id)
            continue
        await table.indexed(item.job_id, item.artifact_id, model, count)
        indexed += 1
    for job_id in await table.resend_due(stage):
        await resend_embed(services, job_id)
    return indexed


def _index_one(services: Services, item: ToIndex) -> tuple[str, int]:
    store = services.store
    doc = store.get_json(store.key_of(item.artifact_uri), SearchPassages)
    vectors = vectors_from_bytes(store.get_bytes(store.key_of(doc.vectors_uri)))
    job = IndexedJob(item.job_id, item.owner, item.file_name, item.created_at)
    count = services.search.index().upsert_job(
        job,
        doc.passages,
        vectors,
        model_id=doc.model,
        artifact_id=item.artifact_id,
        replaces=artifact_of(item.indexed),
    )
    log.info("search: indexed %d passage(s) of job %s (%s)", count, item.job_id, doc.model)
    return doc.model, count


@asynccontextmanager
async def search_syncer(services: Services) -> AsyncIterator[None]:
    interval = services.settings.search.sync_interval_s

    async def loop() -> None:
        while True:
            try:
                await sync_once(services)
            except Exception:  # the next pass tries again
                log.exception("search index sync failed")
            await asyncio.sleep(interval)

    task = asyncio.create_task(loop(), name="search-sync")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
