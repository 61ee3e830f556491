"""The `search_index` table: which embed artifact of each job the search index holds.

The gateway's index sync (gateway/services/search_sync.py) reads it to find jobs whose current
embed artifact is not indexed yet, the index entries of jobs that are gone, and the jobs
whose passages must be embedded again once their embed stage is free. Deleting a job
leaves a row for it here (JobStore.delete_job), whatever the index holds of it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from storage.sql import mine, owner_id, parse_id


@dataclass(frozen=True)
class Indexed:
    """The embed artifact the index holds for a job: its model, id and passage count."""

    model_id: str
    artifact_id: str
    passages: int


@dataclass(frozen=True)
class ToIndex:
    """A job whose current embed artifact the index does not hold yet."""

    job_id: str
    owner: str | None
    file_name: str | None
    created_at: datetime
    artifact_id: str
    artifact_uri: str
    indexed: Indexed | None  # what the index holds of it now


def _indexed(row: asyncpg.Record) -> Indexed | None:
    if row["indexed_artifact"] is None or row["model_id"] is None:
        return None
    return Indexed(row["model_id"], str(row["indexed_artifact"]), row["passages"])


class SearchIndexStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def to_index(self, stage: str, limit: int = 20) -> list[ToIndex]:
        """Jobs whose `stage` (the embed stage) succeeded with an artifact other than the
        indexed one, oldest change first."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT j.id, j.owner, j.filename, j.created_at, a.id AS artifact_id, a.uri,"
                " i.artifact_id AS indexed_artifact, i.model_id, i.passages"
                " FROM job_stages s JOIN jobs j ON j.id = s.job_id"
                " JOIN artifacts a ON a.id = s.artifact_id"
                " LEFT JOIN search_index i ON i.job_id = s.job_id"
                " WHERE s.stage = $1 AND s.status = 'succeeded'"
                "   AND i.artifact_id IS DISTINCT FROM s.artifact_id"
                " ORDER BY s.finished_at NULLS FIRST LIMIT $2",
                stage,
                limit,
            )
        return [
            ToIndex(
                job_id=str(r["id"]),
                owner=str(r["owner"]) if r["owner"] else None,
                file_name=r["filename"],
                created_at=r["created_at"],
                artifact_id=str(r["artifact_id"]),
                artifact_uri=r["uri"],
                indexed=_indexed(r),
            )
            for r in rows
        ]

    async def indexed(self, job_id: str, artifact_id: str, model_id: str, passages: int) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO search_index (job_id, artifact_id, model_id, passages, indexed_at)"
                " VALUES ($1, $2, $3, $4, now()) ON CONFLICT (job_id) DO UPDATE SET"
                " artifact_id = $2, model_id = $3, passages = $4, indexed_at = now()",
                uuid.UUID(job_id),
                uuid.UUID(artifact_id),
                model_id,
                passages,
            )

    async def gone(self, limit: int = 100) -> list[str]:
        """Jobs with a row here that no longer exist (deleted by their owner, retention,
        or while their passages were being indexed): their points are to be removed."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT i.job_id FROM search_index i"
                " WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = i.job_id) LIMIT $1",
                limit,
            )
        return [str(r["job_id"]) for r in rows]

    async def touch(self, job_id: str) -> None:
        """Make sure the job has a row (one it has is left as it is)."""
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO search_index (job_id) VALUES ($1) ON CONFLICT (job_id) DO NOTHING",
                parse_id(job_id),
            )

    async def entry(self, job_id: str) -> tuple[bool, Indexed | None]:
        """Whether the table has a row for the job, and what the index holds of it."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT artifact_id AS indexed_artifact, model_id, passages"
                " FROM search_index WHERE job_id = $1",
                parse_id(job_id),
            )
        return (row is not None, _indexed(row) if row is not None else None)

    async def forget(self, job_id: str) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute("DELETE FROM search_index WHERE job_id = $1", parse_id(job_id))

    async def want_resend(self, job_id: str, wanted: bool = True) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO search_index (job_id, resend) VALUES ($1, $2)"
                " ON CONFLICT (job_id) DO UPDATE SET resend = $2",
                parse_id(job_id),
                wanted,
            )

    async def resend_due(self, stage: str, limit: int = 20) -> list[str]:
        """Jobs marked for a new embedding whose embed stage is neither queued nor running
        and whose job has succeeded: what can be sent again now."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT i.job_id FROM search_index i JOIN jobs j ON j.id = i.job_id"
                " WHERE i.resend AND j.status = 'succeeded' AND NOT EXISTS ("
                "   SELECT 1 FROM job_stages s WHERE s.job_id = i.job_id AND s.stage = $1"
                "   AND s.status IN ('queued', 'running')) LIMIT $2",
                stage,
                limit,
            )
        return [str(r["job_id"]) for r in rows]

    async def succeeded_jobs(self, owner: str | None) -> list[str]:
        """The owner's succeeded jobs (every job's, with `owner` None), oldest first."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT id FROM jobs WHERE status = 'succeeded' AND {mine(1)} ORDER BY created_at",
                owner_id(owner),
            )
        return [str(r["id"]) for r in rows]
