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

from core.graph import StageGraph


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
    waiting_for: str | None  # an input of the stage that is not done yet


@dataclass(frozen=True)
class Succeeded:
    """What recording a stage's success decided, in the same transaction."""

    job_done: bool  # this was the last stage the result waits for: the job succeeded
    ready: tuple[str, ...]  # stages whose inputs are now all done, to be sent (once)


@dataclass(frozen=True)
class Stalled:
    job_id: str
    stages: tuple[str, ...]  # queued stages whose inputs are done: where the job resumes
    updated_at: datetime


def _secs(value: float) -> float:
    return float(value)


# A job runs its result stages while 'queued' or 'running'; the stages after the result
# (result=False in the graph) also once it has 'succeeded'.
_ACTIVE = ("queued", "running")
_ACTIVE_AFTER_RESULT = ("queued", "running", "succeeded")


class LeaseStore:
    def __init__(self, pool: asyncpg.Pool, graph: StageGraph) -> None:
        self.pool = pool
        self.graph = graph

    def _job_states(self, stage: str) -> list[str]:
        return list(_ACTIVE if self.graph[stage].result else _ACTIVE_AFTER_RESULT)

    # ------------------------------------------------------------ a worker's side

    async def acquire(
        self, job_id: str, stage: str, owner: str, ttl_s: float
    ) -> LeaseGrant | LeaseRefusal:
        """Take the stage's lease and mark it running, or say why not.

        Granted when the stage is queued (or running under an expired lease: its worker
        died) and every stage it reads has succeeded in this run (a stale message must not
        run a stage on the previous run's inputs).
        """
        jid = uuid.UUID(job_id)
        inputs = list(self.graph[stage].inputs)
        result = self.graph[stage].result
        async with self.pool.acquire() as conn, conn.transaction():
            attempts = await conn.fetchval(
                "UPDATE job_stages s SET status = 'running', started_at = now(),"
                " finished_at = NULL, error = NULL, attempts = s.attempts + 1, worker = $3,"
                " lease_owner = $3, lease_expires_at = now() + make_interval(secs => $4)"
                " WHERE s.job_id = $1 AND s.stage = $2"
                "   AND (s.status = 'queued' OR (s.status = 'running' AND"
                "        (s.lease_expires_at IS NULL OR s.lease_expires_at < now())))"
                "   AND NOT EXISTS (SELECT 1 FROM job_stages p WHERE p.job_id = s.job_id"
                "        AND p.stage = ANY($5::text[]) AND p.status <> 'succeeded')"
                "   AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = s.job_id"
                "        AND j.status = ANY($6::text[]))"
                " RETURNING s.attempts",
                jid,
                stage,
                owner,
                _secs(ttl_s),
                inputs,
                self._job_states(stage),
            )
            if attempts is not None:
                if result:
                    await conn.execute(
                        "UPDATE jobs SET status = 'running',"
                        " started_at = COALESCE(started_at, now()), updated_at = now()"
                        " WHERE id = $1",
                        jid,
                    )
                else:
                    await conn.execute("UPDATE jobs SET updated_at = now() WHERE id = $1", jid)
                return LeaseGrant(owner=owner, attempts=int(attempts))
            job_status = await conn.fetchval("SELECT status FROM jobs WHERE id = $1", jid)
            rows = await conn.fetch(
                "SELECT stage, status, lease_owner IS NOT NULL AND lease_expires_at >= now()"
                " AS live FROM job_stages WHERE job_id = $1 AND stage = ANY($2::text[])",
                jid,
                [stage, *inputs],
            )
        status = {r["stage"]: r for r in rows}
        row = status.get(stage)
        waiting = next(
            (i for i in inputs if i not in status or status[i]["status"] != "succeeded"), None
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
    ) -> Succeeded | None:
        """Record the stage's artifact and release the lease; end the job when this was the
        last stage its result waits for; and decide which stages it was the last input of.

        One transaction under the job row's lock: of two workers finishing the two inputs
        of a stage at once, the second sees both done and alone gets that stage in `ready`
        (marked dispatched), so it is sent once and never forgotten. None (and nothing
        changed) when the lease is no longer ours.
        """
        jid = uuid.UUID(job_id)
        async with self.pool.acquire() as conn, conn.transaction():
            job_status = await conn.fetchval(
                "SELECT status FROM jobs WHERE id = $1 FOR UPDATE", jid
            )
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
                return None
            rows = await conn.fetch(
                "SELECT stage, status, dispatched FROM job_stages WHERE job_id = $1", jid
            )
            status = {r["stage"]: r["status"] for r in rows}
            dispatched = {r["stage"] for r in rows if r["dispatched"]}
            job_done = False
            if self.graph[stage].result and all(
                status.get(n) == "succeeded" for n in self.graph.result_stages
            ):
                job_done = bool(
                    await conn.fetchval(
                        "UPDATE jobs SET status = 'succeeded', finished_at = now(),"
                        " updated_at = now(), terminal_published = false"
                        " WHERE id = $1 AND status IN ('queued', 'running') RETURNING true",
                        jid,
                    )
                )
                if job_done:
                    job_status = "succeeded"
            else:
                await conn.execute("UPDATE jobs SET updated_at = now() WHERE id = $1", jid)
            candidates = [
                name
                for name in self.graph.dependents(stage)
                if status.get(name) == "queued"
                and name not in dispatched
                and job_status in self._job_states(name)
                and all(status.get(i) == "succeeded" for i in self.graph[name].inputs)
            ]
            ready: list[str] = []
            if candidates:
                ready = [
                    r["stage"]
                    for r in await conn.fetch(
                        "UPDATE job_stages SET dispatched = true WHERE job_id = $1"
                        " AND stage = ANY($2::text[]) AND NOT dispatched RETURNING stage",
                        jid,
                        candidates,
                    )
                ]
        ordered = tuple(n for n in self.graph.names if n in ready)
        return Succeeded(job_done=job_done, ready=ordered)

    async def fail(self, job_id: str, stage: str, owner: str, message: str) -> bool:
        """The stage failed for good. A stage the result waits for fails the job; one after
        the result only itself (and what depends on it), the transcript stays. False when
        the lease is not ours."""
        jid = uuid.UUID(job_id)
        result = self.graph[stage].result
        later = [n for n in self.graph.downstream(stage) if n != stage]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", jid)
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
            if not result:
                await conn.execute(
                    "UPDATE job_stages SET status = 'pending' WHERE job_id = $1"
                    " AND status = 'queued' AND stage = ANY($2::text[])",
                    jid,
                    later,
                )
                await conn.execute("UPDATE jobs SET updated_at = now() WHERE id = $1", jid)
                return True
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
        Of two concurrent replays exactly one gets True. Replaying only stages after the
        result leaves the job succeeded (its transcript does not change)."""
        jid = uuid.UUID(job_id)
        reopens = any(self.graph[s].result for s in stages)
        async with self.pool.acquire() as conn, conn.transaction():
            got = await conn.fetchval(
                "UPDATE jobs SET status = CASE WHEN $2 THEN 'queued' ELSE status END,"
                " error_stage = CASE WHEN $2 THEN NULL ELSE error_stage END,"
                " error_message = CASE WHEN $2 THEN NULL ELSE error_message END,"
                " finished_at = CASE WHEN $2 THEN NULL ELSE finished_at END, updated_at = now()"
                " WHERE id = $1 AND status IN ('succeeded', 'failed')"
                "   AND ($2 OR status = 'succeeded')"
                "   AND NOT EXISTS (SELECT 1 FROM job_stages r WHERE r.job_id = $1"
                "        AND r.status IN ('queued', 'running') AND r.stage = ANY($3::text[]))"
                " RETURNING 1",
                jid,
                reopens,
                stages,
            )
            if got is None:
                return False
            await conn.execute(
                "UPDATE job_stages SET status = 'queued', error = NULL, started_at = NULL,"
                " finished_at = NULL, lease_owner = NULL, lease_expires_at = NULL,"
                " dispatched = false"
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

    async def expire_all(self) -> int:
        """End every lease now, for a database whose workers are all known to be dead (the
        embedded one, when the process starting workers on it finds no other: see
        cli/local.py): their stages are taken over by the next reaper round instead of
        after a lease TTL. The number of leases ended."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "UPDATE job_stages SET lease_expires_at = now() - interval '1 second'"
                " WHERE status = 'running' RETURNING 1"
            )
        return len(rows)

    async def stalled(self, stall_after_s: float, limit: int = 50) -> list[Stalled]:
        """Unfinished jobs with nothing recorded for `stall_after_s` and stages that may
        run now (queued, inputs done): their message may have been lost (a worker killed
        between recording a stage and queueing the next, a Redis that lost its data, a
        gateway that died after creating the job). Another stage of the job may be running
        meanwhile (a long transcribe beside a lost identify). The caller checks the queue
        before acting; a message sent twice is harmless (the lease lets one run)."""
        after_result = [d.name for d in self.graph if not d.result]
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT j.id, j.updated_at,"
                " array_agg(s.stage) FILTER (WHERE s.status = 'succeeded') AS done,"
                " array_agg(s.stage) FILTER (WHERE s.status = 'queued') AS queued"
                " FROM jobs j JOIN job_stages s ON s.job_id = j.id"
                " WHERE (j.status IN ('queued', 'running') OR (j.status = 'succeeded' AND"
                "        EXISTS (SELECT 1 FROM job_stages q WHERE q.job_id = j.id"
                "        AND q.status = 'queued' AND q.stage = ANY($3::text[]))))"
                "   AND j.updated_at < now() - make_interval(secs => $1)"
                " GROUP BY j.id, j.updated_at ORDER BY j.updated_at LIMIT $2",
                _secs(stall_after_s),
                limit,
                after_result,
            )
        stalled = []
        for r in rows:
            done = set(r["done"] or ())
            queued = set(r["queued"] or ())
            ready = tuple(
                d.name for d in self.graph if d.name in queued and all(i in done for i in d.inputs)
            )
            if ready:
                stalled.append(Stalled(str(r["id"]), ready, r["updated_at"]))
        return stalled

    async def claim_stalled(self, job: Stalled) -> bool:
        """Touch the job if nobody did since it was seen stalled (one reaper wins)."""
        async with self.pool.acquire() as conn:
            got = await conn.fetchval(
                "UPDATE jobs SET updated_at = now() WHERE id = $1 AND updated_at = $2"
                " AND status IN ('queued', 'running', 'succeeded') RETURNING 1",
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
