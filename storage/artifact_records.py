"""Artifact records: which artifact each stage made for a job, from what, with what model
and parameters (the provenance rows of the artifacts table). The objects themselves are in
the artifact store (storage/artifacts.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from core.artifacts import ArtifactRecord
from storage.sql import mine, owner_id, parse_id


def _artifact(row: asyncpg.Record) -> ArtifactRecord:
    return ArtifactRecord(
        id=str(row["id"]),
        job_id=str(row["job_id"]),
        stage=row["stage"],
        version=row["version"],
        uri=row["uri"],
        sha256=row["sha256"],
        key=row["key"],
        size_bytes=row["size_bytes"],
        params=row["params"],
        model=row["model"],
        inputs=[str(i) for i in row["inputs"]],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        worker=row["worker"],
        created_at=row["created_at"],
    )


class ArtifactRecordStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def find_artifact(self, job_id: str, stage: str, key: str) -> ArtifactRecord | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM artifacts WHERE job_id = $1 AND stage = $2 AND key = $3",
                parse_id(job_id),
                stage,
                key,
            )
        return _artifact(row) if row else None

    async def record_artifact(
        self,
        *,
        job_id: str,
        stage: str,
        key: str,
        uri: str,
        sha256: str,
        size_bytes: int,
        params: dict[str, Any],
        model: str | None,
        inputs: Sequence[str],
        started_at: datetime | None,
        finished_at: datetime | None,
        worker: str | None,
    ) -> ArtifactRecord:
        """Record an artifact once; a second record of the same key returns the first."""
        jid = parse_id(job_id)
        async with self.pool.acquire() as conn, conn.transaction():
            # Serialise versions per (job, stage) so two writers cannot take the same number.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"{job_id}:{stage}")
            row = await conn.fetchrow(
                "SELECT * FROM artifacts WHERE job_id = $1 AND stage = $2 AND key = $3",
                jid,
                stage,
                key,
            )
            if row is None:
                version = await conn.fetchval(
                    "SELECT COALESCE(max(version), 0) + 1 FROM artifacts"
                    " WHERE job_id = $1 AND stage = $2",
                    jid,
                    stage,
                )
                row = await conn.fetchrow(
                    "INSERT INTO artifacts (id, job_id, stage, version, key, uri, sha256,"
                    " size_bytes, params, model, inputs, started_at, finished_at, worker)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::uuid[], $12, $13, $14)"
                    " RETURNING *",
                    uuid.uuid4(),
                    jid,
                    stage,
                    version,
                    key,
                    uri,
                    sha256,
                    size_bytes,
                    params,
                    model,
                    [parse_id(i) for i in inputs],
                    started_at,
                    finished_at,
                    worker,
                )
        assert row is not None
        return _artifact(row)

    async def current_artifact(self, job_id: str, stage: str) -> ArtifactRecord | None:
        """The artifact the stage last produced or reused for this job."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT a.* FROM job_stages s JOIN artifacts a ON a.id = s.artifact_id"
                " WHERE s.job_id = $1 AND s.stage = $2",
                parse_id(job_id),
                stage,
            )
        return _artifact(row) if row else None

    async def list_artifacts(self, job_id: str, owner: str | None = None) -> list[ArtifactRecord]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT a.* FROM artifacts a JOIN jobs j ON j.id = a.job_id"
                f" WHERE a.job_id = $1 AND {mine(2, 'j.owner')}"
                " ORDER BY a.created_at, a.stage, a.version",
                parse_id(job_id),
                owner_id(owner),
            )
        return [_artifact(r) for r in rows]
