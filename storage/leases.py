"""Stage leases in PostgreSQL: who runs (job, stage) now, and until when.

The broker delivers a message at least once, and hands it to another worker when it has
not been acknowledged for a while, even if the first worker is still busy. A lease makes
the database the judge: a worker runs a stage only after taking its lease atomically,
renews it while it works, and records the outcome only while it still holds it. A lease
that expires while its stage is 'running' means the worker died; the reaper
(stages/recovery.py) hands the stage to the queue again.

Every state change here is one conditional UPDATE, so two workers (or two reapers) racing
for the same row cannot both win.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from core.artifacts import STAGES


@dataclass(frozen=True)
class LeaseGrant:
    owner: str
    attempts: int  # this run's attempt number of the stage (1 on the first delivery)


@dataclass(frozen=True)
class LeaseRefusal:
    """Why a delivery may not run the stage: what the database holds for it."""

    job_status: str | None  # None: the job is gone
    stage_status: str | None
    held_by_other: bool  # a live lease of another worker
    waiting_for: str | None  # an earlier stage of this run that is not done yet


@dataclass(frozen=True)
class Stalled:
    job_id: str
    stage: str  # the first stage not yet succeeded: where the pipeline resumes
    updated_at: datetime


def _secs(value: float) -> float:
    return float(value)


class LeaseStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    # ------------------------------------------------------------ a worker's side

    async def acquire(
        self, job_id: str, stage: str, owner: str, ttl_s: float
    ) -> LeaseGrant | LeaseRefusal:
        """Take the stage's lease and mark it running, or say why not.

        Granted when the stage is queued (or running under an expired lease: its worker
        died) and no earlier stage of the job is still queued or running (a stale message
        must not run a stage on the previous run's inputs).
        """
        jid = uuid.UUID(job_id)
        async with self.pool.acquire() as conn, conn.transaction():
            attempts = await conn.fetchval(
                "UPDATE job_stages s SET status = 'running', started_at = now(),"
                " finished_at = NULL, error = NULL, attempts = s.attempts + 1, worker = $3,"
                " lease_owner = $3, lease_expires_at = now() + make_interval(secs => $4)"
                " WHERE s.job_id = $1 AND s.stage = $2"
                "   AND (s.status = 'queued' OR (s.status = 'running' AND"
                "        (s.lease_expires_at IS NULL OR s.lease_expires_at < now())))"
                "   AND NOT EXISTS (SELECT 1 FROM job_stages p WHERE p.job_id = s.job_id"
                "        AND p.position < s.position AND p.status IN ('queued', 'running'))"
                "   AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = s.job_id"
                "        AND j.status IN ('queued', 'running'))"
                " RETURNING s.attempts",
                jid,
                stage,
                owner,
                _secs(ttl_s),
            )
            if attempts is not None:
                await conn.execute(
                    "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, now()),"
                    " updated_at = now() WHERE id = $1",
                    jid,
                )
                return LeaseGrant(owner=owner, attempts=int(attempts))
            job_status = await conn.fetchval("SELECT status FROM jobs WHERE id = $1", jid)
            row = await conn.fetchrow(
                "SELECT status, lease_owner IS NOT NULL AND lease_expires_at >= now() AS live"
                " FROM job_stages WHERE job_id = $1 AND stage = $2",
                jid,
                stage,
            )
            waiting = await conn.fetchval(
                "SELECT p.stage FROM job_stages p JOIN job_stages s ON s.job_id = p.job_id"
                " WHERE p.job_id = $1 AND s.stage = $2 AND p.position < s.position"
                "   AND p.status IN ('queued', 'running') ORDER BY p.position LIMIT 1",
                jid,
                stage,
            )
        return LeaseRefusal(
            job_status=job_status,
            stage_status=row["status"] if row else None,
            held_by_other=bool(row and row["live"]),
            waiting_for=waiting,
        )

    async def renew(self, job_id: str, stage: str, owner: str, ttl_s: float) -> bool:
        """Extend the lease; False when it is no longer ours (taken over after expiry)."""
        async with self.pool.acquire() as conn:
            got = await conn.fetchval(
                "UPDATE job_stages SET lease_expires_at = now() + make_interval(secs => $4)"
                " WHERE job_id = $1 AND stage = $2 AND lease_owner = $3 AND status = 'running'"
                " RETURNING 1",
                uuid.UUID(job_id),
                stage,
                owner,
                _secs(ttl_s),
            )
        return got is not None

    async def note_retry(
        self, job_id: str, stage: str, owner: str, message: str, ttl_s: float
    ) -> int | None:
        """Count one more attempt after a transient error; the new attempt number."""
        async with self.pool.acquire() as conn:
            attempts = await conn.fetchval(
                "UPDATE job_stages SET attempts = attempts + 1, error = $4,"
                " lease_expires_at = now() + make_interval(secs => $5)"
                " WHERE job_id = $1 AND stage = $2 AND lease_owner = $3 RETURNING attempts",
                uuid.UUID(job_id),
                stage,
                owner,
                message,
                _secs(ttl_s),
            )
        return int(attempts) if attempts is not None else None

    async def succeed(
        self, job_id: str, stage: str, owner: str, artifact_id: str, *, reused: bool
    ) -> bool:
        """Record the stage's artifact and release the lease; the last stage also ends the
        job. False (and nothing changed) when the lease is no longer ours."""
        jid = uuid.UUID(job_id)
        last = stage == STAGES[-1]
        async with self.pool.acquire() as conn, conn.transaction():
            done = await conn.fetchval(
                "UPDATE job_stages SET status = 'succeeded', finished_at = now(), error = NULL,"
                " artifact_id = $4, reused = $5, lease_owner = NULL, lease_expires_at = NULL"
                " WHERE job_id = $1 AND stage = $2 AND lease_owner = $3 AND status = 'running'"
                " RETURNING 1",
                jid,
                stage,
                owner,
                uuid.UUID(artifact_id),
                reused,
            )
            if done is None:
                return False
            if last:
                await conn.execute(
                    "UPDATE jobs SET status = 'succeeded', finished_at = now(), updated_at = now(),"
                    " terminal_published = false WHERE id = $1",
                    jid,
                )
            else:
                await conn.execute("UPDATE jobs SET updated_at = now() WHERE id = $1", jid)
        return True

    async def fail(self, job_id: str, stage: str, owner: str, message: str) -> bool:
        """The stage failed for good: the job fails at it. False when the lease is not ours."""
        jid = uuid.UUID(job_id)
        async with self.pool.acquire() as conn, conn.transaction():
            done = await conn.fetchval(
                "UPDATE job_stages SET status = 'failed', finished_at = now(), error = $4,"
                " lease_owner = NULL, lease_expires_at = NULL"
                " WHERE job_id = $1 AND stage = $2 AND lease_owner = $3 AND status = 'running'"
                " RETURNING 1",
                jid,
                stage,
                owner,
                message,
            )
            if done is None:
                return False
            await conn.execute(
                "UPDATE job_stages SET status = 'pending' WHERE job_id = $1 AND status = 'queued'",
                jid,
            )
            await conn.execute(
                "UPDATE jobs SET status = 'failed', error_stage = $2, error_message = $3,"
                " finished_at = now(), updated_at = now(), terminal_published = false"
                " WHERE id = $1",
                jid,
                stage,
                message,
            )
        return True

    async def release(self, job_id: str, stage: str, owner: str) -> None:
        """Give the stage back to the queue (status 'queued') without an outcome."""
        async with self.pool.acquire() as conn:
            await conn.execute(
                "UPDATE job_stages SET status = 'queued', lease_owner = NULL,"
                " lease_expires_at = NULL WHERE job_id = $1 AND stage = $2 AND lease_owner = $3",
                uuid.UUID(job_id),
                stage,
                owner,
            )

    async def terminal_published(self, job_id: str) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "UPDATE jobs SET terminal_published = true WHERE id = $1", uuid.UUID(job_id)
            )

    # ------------------------------------------------------------ the gateway's side

    async def requeue_if_finished(self, job_id: str, stages: list[str]) -> bool:
        """Replay: queue the given stages again unless the job is queued or running now.
        Of two concurrent replays exactly one gets True."""
        jid = uuid.UUID(job_id)
        async with self.pool.acquire() as conn, conn.transaction():
            got = await conn.fetchval(
                "UPDATE jobs SET status = 'queued', error_stage = NULL, error_message = NULL,"
                " finished_at = NULL, updated_at = now()"
                " WHERE id = $1 AND status IN ('succeeded', 'failed') RETURNING 1",
                jid,
            )
            if got is None:
                return False
            await conn.execute(
                "UPDATE job_stages SET status = 'queued', error = NULL, started_at = NULL,"
                " finished_at = NULL, lease_owner = NULL, lease_expires_at = NULL"
                " WHERE job_id = $1 AND stage = ANY($2::text[])",
                jid,
                stages,
            )
        return True

    # ------------------------------------------------------------ the reaper's side

    async def take_over_expired(self, limit: int = 50) -> list[tuple[str, str]]:
        """Stages whose worker died (lease expired while running): queued again, unleased.
        Each row goes to one caller only (SKIP LOCKED + the conditional update)."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "UPDATE job_stages s SET status = 'queued', lease_owner = NULL,"
                " lease_expires_at = NULL"
                " FROM (SELECT job_id, stage FROM job_stages WHERE status = 'running'"
                "       AND lease_expires_at < now() ORDER BY lease_expires_at LIMIT $1"
                "       FOR UPDATE SKIP LOCKED) x"
                " WHERE s.job_id = x.job_id AND s.stage = x.stage RETURNING s.job_id, s.stage",
                limit,
            )
            if rows:
                await conn.execute(
                    "UPDATE jobs SET updated_at = now() WHERE id = ANY($1::uuid[])",
                    [r["job_id"] for r in rows],
                )
        return [(str(r["job_id"]), r["stage"]) for r in rows]

    async def stalled(self, stall_after_s: float, limit: int = 50) -> list[Stalled]:
        """Unfinished jobs with no stage running and nothing recorded for `stall_after_s`:
        their next message may have been lost (a worker killed between recording a stage
        and queueing the next, a Redis that lost its data, a gateway that died after
        creating the job). The caller checks the queue before acting."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT j.id, j.updated_at,"
                " (SELECT s.stage FROM job_stages s WHERE s.job_id = j.id"
                "   AND s.status <> 'succeeded' ORDER BY s.position LIMIT 1) AS next_stage"
                " FROM jobs j WHERE j.status IN ('queued', 'running')"
                "   AND j.updated_at < now() - make_interval(secs => $1)"
                "   AND NOT EXISTS (SELECT 1 FROM job_stages r WHERE r.job_id = j.id"
                "       AND r.status = 'running')"
                " ORDER BY j.updated_at LIMIT $2",
                _secs(stall_after_s),
                limit,
            )
        return [Stalled(str(r["id"]), r["next_stage"] or STAGES[-1], r["updated_at"]) for r in rows]

    async def claim_stalled(self, job: Stalled) -> bool:
        """Touch the job if nobody did since it was seen stalled (one reaper wins)."""
        async with self.pool.acquire() as conn:
            got = await conn.fetchval(
                "UPDATE jobs SET updated_at = now() WHERE id = $1 AND updated_at = $2"
                " AND status IN ('queued', 'running') RETURNING 1",
                uuid.UUID(job.job_id),
                job.updated_at,
            )
        return got is not None

    async def unpublished_terminal(self, older_than_s: float, limit: int = 50) -> list[str]:
        """Finished jobs whose final event may not have gone out (a crash right after the
        outcome was committed)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id FROM jobs WHERE NOT terminal_published"
                " AND status IN ('succeeded', 'failed')"
                " AND updated_at < now() - make_interval(secs => $1) LIMIT $2",
                _secs(older_than_s),
                limit,
            )
        return [str(r["id"]) for r in rows]
