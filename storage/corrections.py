"""The correction store: what people changed in a job's result (renames, reassignments,
text fixes), kept beside the artifacts, which stay as the stages made them."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from core.corrections import Correction
from core.errors import NotFound
from storage.sql import mine, owner_id, parse_id


class CorrectionStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def add_correction(
        self, job_id: str, kind: str, payload: dict[str, Any], owner: str | None = None
    ) -> Correction:
        """Record a person's correction to a job's result (the artifacts stay untouched)."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "INSERT INTO corrections (id, job_id, kind, payload)"
                " SELECT $1, id, $3, $4 FROM jobs WHERE id = $2 AND " + mine(5) + " RETURNING *",
                uuid.uuid4(),
                parse_id(job_id),
                kind,
                payload,
                owner_id(owner),
            )
        if row is None:
            raise NotFound(f"no job with id {job_id}")
        return self._correction(row)

    async def list_corrections(self, job_id: str, owner: str | None = None) -> list[Correction]:
        """The job's corrections, oldest first: the order they are applied in."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT c.* FROM corrections c JOIN jobs j ON j.id = c.job_id"
                f" WHERE c.job_id = $1 AND {mine(2, 'j.owner')}"
                " ORDER BY c.created_at, c.id",
                parse_id(job_id),
                owner_id(owner),
            )
        return [self._correction(r) for r in rows]

    async def delete_correction(
        self, job_id: str, correction_id: str, owner: str | None = None
    ) -> Correction:
        """Remove one correction of the job (undo it); the ones after it stay."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "DELETE FROM corrections c USING jobs j"
                " WHERE c.id = $1 AND c.job_id = $2 AND j.id = c.job_id"
                f" AND {mine(3, 'j.owner')} RETURNING c.*",
                parse_id(correction_id),
                parse_id(job_id),
                owner_id(owner),
            )
        if row is None:
            raise NotFound(f"job {job_id} has no correction {correction_id}")
        return self._correction(row)

    # ------------------------------------------------------------ identification in use

    async def identify_feedback(
        self, identify: str, kind: str, owner: str | None = None
    ) -> list[tuple[str, list[dict[str, Any]]]]:
        """(uri of the job's current artifact of stage `identify`, the graph's producer of
        the Identification, and its corrections of `kind` oldest first) for every job (of
        `owner`) with at least one such correction."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT a.uri, jsonb_agg(c.payload ORDER BY c.created_at, c.id) AS payloads"
                " FROM corrections c"
                " JOIN jobs j ON j.id = c.job_id"
                " JOIN job_stages s ON s.job_id = c.job_id AND s.stage = $1"
                " JOIN artifacts a ON a.id = s.artifact_id"
                f" WHERE c.kind = $2 AND {mine(3, 'j.owner')} GROUP BY a.uri",
                identify,
                kind,
                owner_id(owner),
            )
        return [(r["uri"], list(r["payloads"])) for r in rows]

    # ------------------------------------------------------------ mapping

    @staticmethod
    def _correction(row: asyncpg.Record) -> Correction:
        return Correction(
            id=str(row["id"]),
            job_id=str(row["job_id"]),
            kind=row["kind"],
            payload=row["payload"],
            created_at=row["created_at"],
        )
