"""What counts against an API key's `max_concurrent_jobs`: its tenant's unfinished jobs
(queued or running) and the enrollments from clips its requests are waiting on (each holds
a request and, on a worker, the slot a job would). Both are counted, and a new one taken,
under one per-tenant advisory lock, so concurrent requests cannot both take the last place.

An enrollment holds an `enrollment_slots` row from when its clips are stored until the
worker's answer (or the gateway's giving up); the row is deleted however the enrollment
ends, and one left by a gateway that died stops counting at its `expires_at`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from core.errors import TooManyJobs
from storage.sql import owner_id

_COUNT = """
SELECT (SELECT count(*) FROM jobs WHERE owner IS NOT DISTINCT FROM $1
        AND status IN ('queued', 'running'))
     + (SELECT count(*) FROM enrollment_slots WHERE owner IS NOT DISTINCT FROM $1
        AND expires_at > now())
"""


def too_many(max_active: int, active: int) -> TooManyJobs:
    return TooManyJobs(
        f"this key may have {max_active} unfinished job(s) at a time (an enrollment in"
        f" progress counts as one) and has {active}; wait for one to finish, or delete one"
    )


async def active_count(conn: asyncpg.Connection, owner: str | None) -> int:
    """The owner's unfinished jobs and enrollments in progress."""
    return int(await conn.fetchval(_COUNT, owner_id(owner)))


async def lock_owner(conn: asyncpg.Connection, owner: str | None) -> None:
    """The per-tenant lock that counting and taking a place happen under (in a transaction)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"jobs-of:{owner}")


async def check_room(conn: asyncpg.Connection, owner: str | None, max_active: int) -> None:
    """TooManyJobs when the owner has `max_active` or more; call under `lock_owner`."""
    active = await active_count(conn, owner)
    if active >= max_active:
        raise too_many(max_active, active)


class EnrollmentSlots:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def held(
        self, owner: str | None, max_active: int | None, *, ttl_s: float
    ) -> AsyncIterator[None]:
        """A place among the owner's `max_active` for the duration of the block (nothing
        to take when the key has no limit); TooManyJobs (429) when there is none."""
        if max_active is None:
            yield
            return
        slot = await self.claim(owner, max_active, ttl_s=ttl_s)
        try:
            yield
        finally:
            await self.release(slot)

    async def claim(self, owner: str | None, max_active: int, *, ttl_s: float) -> uuid.UUID:
        slot = uuid.uuid4()
        async with self.pool.acquire() as conn, conn.transaction():
            await lock_owner(conn, owner)
            await conn.execute(
                "DELETE FROM enrollment_slots WHERE owner IS NOT DISTINCT FROM $1"
                " AND expires_at <= now()",
                owner_id(owner),
            )
            await check_room(conn, owner, max_active)
            await conn.execute(
                "INSERT INTO enrollment_slots (id, owner, expires_at)"
                " VALUES ($1, $2, now() + make_interval(secs => $3))",
                slot,
                owner_id(owner),
                ttl_s,
            )
        return slot

    async def release(self, slot: uuid.UUID) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute("DELETE FROM enrollment_slots WHERE id = $1", slot)
