"""The job store: jobs and their stage rows in PostgreSQL.

A stage row changes state (running, succeeded, failed, queued again) only under its lease:
storage/leases.py. Artifact records, speakers, corrections and calibrations have stores of
their own (storage/artifact_records.py, speakers.py, corrections.py, calibration.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from core.artifacts import JobParams
from core.errors import NotFound
from core.graph import StageGraph
from core.jobs import Job, JobError, StageState
from storage.limits import active_count, check_room, lock_owner
from storage.sql import mine, owner_id, parse_id


def _elapsed(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


_INSERT_JOB = """
WITH job AS (
    INSERT INTO jobs (id, status, filename, content_type, size_bytes, upload_uri,
                      upload_sha256, params, owner, max_duration_s)
    VALUES ($1, 'queued', $2, $3, $4, $5, $6, $7, $8, $9)
    RETURNING id
)
INSERT INTO job_stages (job_id, stage, position, status)
SELECT job.id, stage.name, stage.position - 1, $11
FROM job, unnest($10::text[]) WITH ORDINALITY AS stage(name, position)
"""


_DELETE_JOB = f"""
WITH gone AS (DELETE FROM jobs WHERE id = $1 AND {mine(2)} RETURNING id),
marked AS (
    INSERT INTO search_index (job_id) SELECT id FROM gone ON CONFLICT (job_id) DO NOTHING
)
SELECT count(*) FROM gone
"""


class JobStore:
    def __init__(self, pool: asyncpg.Pool, graph: StageGraph) -> None:
        self.pool = pool
        self.graph = graph  # the stage rows a job gets

    async def create_job(
        self,
        *,
        job_id: str,
        filename: str | None,
        content_type: str | None,
        size_bytes: int,
        upload_uri: str,
        upload_sha256: str,
        params: JobParams,
        owner: str | None = None,
        max_duration_s: float | None = None,
        max_active: int | None = None,
        stage_status: str = "queued",
    ) -> None:
        """Record a queued job and its stages (`stage_status` "pending": a live meeting,
        whose stages are queued when it ends, `start_recorded`). With `max_active`, refuse
        (TooManyJobs) when the owner already has that many queued or running jobs and enrollments in
        progress; checked under a per-owner lock (storage/limits.py).

        The job and its stage rows go in with one statement (one round trip, atomic on
        its own): this runs between the end of an upload and its 202.
        """
        args = (
            parse_id(job_id),
            filename,
            content_type,
            size_bytes,
            upload_uri,
            upload_sha256,
            params.model_dump(exclude_none=True),
            owner_id(owner),
            max_duration_s,
            list(self.graph.names),
            stage_status,
        )
        async with self.pool.acquire() as conn:
            if max_active is None:
                await conn.execute(_INSERT_JOB, *args)
                return
            async with conn.transaction():
                await lock_owner(conn, owner)
                await check_room(conn, owner, max_active)
                await conn.execute(_INSERT_JOB, *args)

    async def active_jobs(self, owner: str | None) -> int:
        """How many queued or running jobs `owner` has, enrollments in progress included
        (storage/limits.py)."""
        async with self.pool.acquire() as conn:
            return await active_count(conn, owner)

    async def get_job(self, job_id: str, owner: str | None = None) -> Job:
        jid = parse_id(job_id)
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT * FROM jobs WHERE id = $1 AND {mine(2)}", jid, owner_id(owner)
            )
            if row is None:
                raise NotFound(f"no job with id {job_id}")
            stages = await conn.fetch(
                "SELECT * FROM job_stages WHERE job_id = $1 ORDER BY position", jid
            )
        return self._job(row, stages)

    async def ensure_stage_rows(self, job_id: str) -> None:
        """Give the job a row for every stage of the graph it lacks (a stage declared after
        the job was made), not yet run."""
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO job_stages (job_id, stage, position, status)"
                " SELECT $1, stage.name, stage.position - 1, 'pending'"
                " FROM unnest($2::text[]) WITH ORDINALITY AS stage(name, position)"
                " ON CONFLICT (job_id, stage) DO NOTHING",
                parse_id(job_id),
                list(self.graph.names),
            )

    async def list_jobs(self, limit: int = 50, owner: str | None = None) -> list[Job]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT * FROM jobs WHERE {mine(2)} ORDER BY created_at DESC LIMIT $1",
                limit,
                owner_id(owner),
            )
            stages = await conn.fetch(
                "SELECT * FROM job_stages WHERE job_id = ANY($1::uuid[]) ORDER BY position",
                [r["id"] for r in rows],
            )
        by_job: dict[uuid.UUID, list[asyncpg.Record]] = {}
        for s in stages:
            by_job.setdefault(s["job_id"], []).append(s)
        return [self._job(r, by_job.get(r["id"], [])) for r in rows]

    async def delete_job(self, job_id: str, owner: str | None = None) -> None:
        """Delete the job's row (its stages, artifact records and corrections go with it)
        and, in the same statement, leave a `search_index` row for it: the search index
        may hold passages of the job whatever that table says (an upsert that failed
        half-way or is running now), and such a row is how the gateway's sync loop finds a
        deleted job's passages to remove (gateway/services/search_sync.py)."""
        async with self.pool.acquire() as conn:
            deleted = await conn.fetchval(_DELETE_JOB, parse_id(job_id), owner_id(owner))
        if not deleted:
            raise NotFound(f"no job with id {job_id}")

    async def update_params(self, job_id: str, params: JobParams) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "UPDATE jobs SET params = $2, updated_at = now() WHERE id = $1",
                parse_id(job_id),
                params.model_dump(exclude_none=True),
            )

    async def start_recorded(
        self, job_id: str, *, size_bytes: int, upload_uri: str, upload_sha256: str
    ) -> bool:
        """A live meeting's recording becomes the job's upload and its pending stages are
        queued. False when that happened already (a second Stop)."""
        jid = parse_id(job_id)
        async with self.pool.acquire() as conn, conn.transaction():
            moved = await conn.fetchval(
                "UPDATE jobs SET size_bytes = $2, upload_uri = $3, upload_sha256 = $4,"
                " updated_at = now() WHERE id = $1 AND upload_sha256 = '' RETURNING true",
                jid,
                size_bytes,
                upload_uri,
                upload_sha256,
            )
            if not moved:
                return False
            await conn.execute(
                "UPDATE job_stages SET status = 'queued' WHERE job_id = $1 AND status = 'pending'",
                jid,
            )
        return True

    async def set_job_info(
        self, job_id: str, *, duration_s: float | None = None, language: str | None = None
    ) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "UPDATE jobs SET duration_s = COALESCE($2, duration_s),"
                " language = COALESCE($3, language), updated_at = now() WHERE id = $1",
                parse_id(job_id),
                duration_s,
                language,
            )

    # ------------------------------------------------------------ retention

    async def jobs_created_before(self, cutoff: datetime, limit: int = 500) -> list[str]:
        """Ids of jobs created before `cutoff`, oldest first."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id FROM jobs WHERE created_at < $1 ORDER BY created_at LIMIT $2",
                cutoff,
                limit,
            )
        return [str(r["id"]) for r in rows]

    # ------------------------------------------------------------ mapping

    @staticmethod
    def _job(row: asyncpg.Record, stages: Sequence[asyncpg.Record]) -> Job:
        error = None
        if row["error_message"]:
            error = JobError(stage=row["error_stage"], message=row["error_message"])
        return Job(
            id=str(row["id"]),
            status=row["status"],
            filename=row["filename"],
            content_type=row["content_type"],
            size_bytes=row["size_bytes"],
            upload_uri=row["upload_uri"],
            upload_sha256=row["upload_sha256"],
            params=JobParams.model_validate(row["params"]),
            duration_s=row["duration_s"],
            language=row["language"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            error=error,
            owner=str(row["owner"]) if row["owner"] else None,
            max_duration_s=row["max_duration_s"],
            stages=[
                StageState(
                    stage=s["stage"],
                    status=s["status"],
                    artifact_id=str(s["artifact_id"]) if s["artifact_id"] else None,
                    reused=s["reused"],
                    started_at=s["started_at"],
                    finished_at=s["finished_at"],
                    elapsed_s=_elapsed(s["started_at"], s["finished_at"]),
                    attempts=s["attempts"],
                    worker=s["worker"],
                    error=s["error"],
                )
                for s in stages
            ],
        )
