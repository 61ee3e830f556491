"""Retention: jobs older than `retention_days` are deleted with every artifact they made."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from core.errors import NotFound
from storage.artifacts import ArtifactStore, job_prefix
from storage.jobs import JobStore

log = logging.getLogger("scribe.retention")


async def sweep_expired(
    jobs: JobStore,
    store: ArtifactStore,
    retention_days: float | None,
    *,
    on_deleted: Callable[[str], Awaitable[None]] | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Delete every job created more than `retention_days` ago (files first, then the row,
    so a crash in between leaves a row to find next time); returns their ids."""
    if retention_days is None:
        return []
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    deleted: list[str] = []
    while True:
        batch = [j for j in await jobs.jobs_created_before(cutoff) if j not in deleted]
        if not batch:
            return deleted
        for job_id in batch:
            await asyncio.to_thread(store.delete_prefix, job_prefix(job_id))
            try:
                await jobs.delete_job(job_id)
            except NotFound:
                pass  # deleted meanwhile by its owner
            if on_deleted is not None:
                await on_deleted(job_id)
            deleted.append(job_id)
        log.info("retention: deleted %d job(s) older than %s days", len(batch), retention_days)
