"""The job store: jobs, per-stage state, artifact provenance and voiceprints in PostgreSQL.

A stage row changes state (running, succeeded, failed, queued again) only under the
stage's lease: storage/leases.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from core.artifacts import ArtifactRecord, JobParams
from core.corrections import Correction
from core.errors import NotFound, TooManyJobs
from core.graph import DEFAULT_GRAPH, StageGraph
from core.jobs import Consent, Job, JobError, Speaker, StageState


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"no such id: {value!r}") from None


def _owner(owner: str | None) -> uuid.UUID | None:
    return uuid.UUID(owner) if owner is not None else None


# `owner` arguments scope a query to one tenant; None leaves it unscoped (auth off, and the
# worker, which acts for the job's owner). Another tenant's row reads as missing: NotFound.
_MINE = "($OWNER::uuid IS NULL OR owner = $OWNER::uuid)"


def _mine(n: int) -> str:
    return _MINE.replace("$OWNER", f"${n}")


def _elapsed(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


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


def _consent_values(consent: Consent | None) -> tuple[str | None, datetime | None, str | None]:
    """(consent_by, consent_at, consent_note) column values, all None without consent."""
    if consent is None:
        return None, None, None
    return consent.by, consent.at, consent.note


_INSERT_JOB = """
WITH job AS (
    INSERT INTO jobs (id, status, filename, content_type, size_bytes, upload_uri,
                      upload_sha256, params, owner, max_duration_s)
    VALUES ($1, 'queued', $2, $3, $4, $5, $6, $7, $8, $9)
    RETURNING id
)
INSERT INTO job_stages (job_id, stage, position, status)
SELECT job.id, stage.name, stage.position - 1, 'queued'
FROM job, unnest($10::text[]) WITH ORDINALITY AS stage(name, position)
"""


class JobStore:
    def __init__(self, pool: asyncpg.Pool, graph: StageGraph = DEFAULT_GRAPH) -> None:
        self.pool = pool
        self.graph = graph  # the stage rows a job gets

    # ------------------------------------------------------------ jobs

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
    ) -> None:
        """Record a queued job and its stages. With `max_active`, refuse (TooManyJobs)
        when the owner already has that many queued or running jobs; checked under a
        per-owner lock.

        The job and its stage rows go in with one statement (one round trip, atomic on
        its own): this runs between the end of an upload and its 202.
        """
        args = (
            _uuid(job_id),
            filename,
            content_type,
            size_bytes,
            upload_uri,
            upload_sha256,
            params.model_dump(exclude_none=True),
            _owner(owner),
            max_duration_s,
            list(self.graph.names),
        )
        async with self.pool.acquire() as conn:
            if max_active is None:
                await conn.execute(_INSERT_JOB, *args)
                return
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"jobs-of:{owner}")
                active = await conn.fetchval(
                    "SELECT count(*) FROM jobs WHERE owner IS NOT DISTINCT FROM $1"
                    " AND status IN ('queued', 'running')",
                    _owner(owner),
                )
                if active >= max_active:
                    raise TooManyJobs(
                        f"this key may have {max_active} unfinished job(s) at a time and has"
                        f" {active}; wait for one to finish, or delete one"
                    )
                await conn.execute(_INSERT_JOB, *args)

    async def active_jobs(self, owner: str | None) -> int:
        """How many queued or running jobs `owner` has."""
        async with self.pool.acquire() as conn:
            value = await conn.fetchval(
                "SELECT count(*) FROM jobs WHERE owner IS NOT DISTINCT FROM $1"
                " AND status IN ('queued', 'running')",
                _owner(owner),
            )
        return int(value)

    async def get_job(self, job_id: str, owner: str | None = None) -> Job:
        jid = _uuid(job_id)
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT * FROM jobs WHERE id = $1 AND {_mine(2)}", jid, _owner(owner)
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
                _uuid(job_id),
                list(self.graph.names),
            )

    async def list_jobs(self, limit: int = 50, owner: str | None = None) -> list[Job]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT * FROM jobs WHERE {_mine(2)} ORDER BY created_at DESC LIMIT $1",
                limit,
                _owner(owner),
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
        async with self.pool.acquire() as conn:
            result = await conn.execute(
                f"DELETE FROM jobs WHERE id = $1 AND {_mine(2)}", _uuid(job_id), _owner(owner)
            )
        if result.endswith(" 0"):
            raise NotFound(f"no job with id {job_id}")

    async def update_params(self, job_id: str, params: JobParams) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "UPDATE jobs SET params = $2, updated_at = now() WHERE id = $1",
                _uuid(job_id),
                params.model_dump(exclude_none=True),
            )

    async def set_job_info(
        self, job_id: str, *, duration_s: float | None = None, language: str | None = None
    ) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "UPDATE jobs SET duration_s = COALESCE($2, duration_s),"
                " language = COALESCE($3, language), updated_at = now() WHERE id = $1",
                _uuid(job_id),
                duration_s,
                language,
            )

    # ------------------------------------------------------------ artifacts

    async def find_artifact(self, job_id: str, stage: str, key: str) -> ArtifactRecord | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM artifacts WHERE job_id = $1 AND stage = $2 AND key = $3",
                _uuid(job_id),
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
        jid = _uuid(job_id)
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
                    [_uuid(i) for i in inputs],
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
                _uuid(job_id),
                stage,
            )
        return _artifact(row) if row else None

    async def list_artifacts(self, job_id: str, owner: str | None = None) -> list[ArtifactRecord]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT a.* FROM artifacts a JOIN jobs j ON j.id = a.job_id"
                f" WHERE a.job_id = $1 AND {_mine(2).replace('owner', 'j.owner')}"
                " ORDER BY a.created_at, a.stage, a.version",
                _uuid(job_id),
                _owner(owner),
            )
        return [_artifact(r) for r in rows]

    # ------------------------------------------------------------ speakers

    async def create_speaker(
        self,
        *,
        name: str,
        model: str,
        embedding: Sequence[float],
        clip_uris: Sequence[str],
        speaker_id: str | None = None,
        owner: str | None = None,
        source: str | None = "clips",
        consent: Consent | None = None,
        expires_at: datetime | None = None,
    ) -> Speaker:
        sid = uuid.UUID(speaker_id) if speaker_id else uuid.uuid4()
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "INSERT INTO speakers (id, name, model, embedding, clip_uris, owner, source,"
                " consent_by, consent_at, consent_note, expires_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *",
                sid,
                name,
                model,
                list(embedding),
                list(clip_uris),
                _owner(owner),
                source,
                *_consent_values(consent),
                expires_at,
            )
        assert row is not None
        return self._speaker(row)

    async def list_speakers(self, owner: str | None = None) -> list[Speaker]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT * FROM speakers WHERE {_mine(1)} ORDER BY name, created_at",
                _owner(owner),
            )
        return [self._speaker(r) for r in rows]

    async def speakers_expired_at(self, now: datetime, limit: int = 500) -> list[Speaker]:
        """Voiceprints whose `expires_at` is at or before `now`, every owner's."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT * FROM speakers WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2",
                now,
                limit,
            )
        return [self._speaker(r) for r in rows]

    async def voiceprints(
        self, owner: str | None = None
    ) -> list[tuple[str, str, str, list[float]]]:
        """(id, name, model, embedding) of every speaker enrolled by `owner` (a job's
        owner: None is the single-user owner, never "everyone's")."""
        async with self.pool.acquire() as conn:
            # An expired voiceprint is never used, even before the sweep deletes it.
            rows = await conn.fetch(
                "SELECT id, name, model, embedding FROM speakers"
                " WHERE owner IS NOT DISTINCT FROM $1"
                " AND (expires_at IS NULL OR expires_at > now()) ORDER BY id",
                _owner(owner),
            )
        return [(str(r["id"]), r["name"], r["model"], list(r["embedding"])) for r in rows]

    async def delete_speaker(self, speaker_id: str, owner: str | None = None) -> Speaker:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"DELETE FROM speakers WHERE id = $1 AND {_mine(2)} RETURNING *",
                _uuid(speaker_id),
                _owner(owner),
            )
        if row is None:
            raise NotFound(f"no enrolled speaker with id {speaker_id}")
        return self._speaker(row)

    async def update_speaker(
        self,
        speaker_id: str,
        *,
        name: str,
        model: str,
        embedding: Sequence[float],
        owner: str | None = None,
        consent: Consent | None = None,
        expires_at: datetime | None = None,
        added_source: str | None = None,
    ) -> Speaker:
        """Give an enrolled speaker a new name and voiceprint (same id, same clips);
        consent and expiry are replaced only when given. `added_source` (a recording whose
        voice went into the voiceprint) is appended to the source, with the time."""
        added = f"{added_source}@{datetime.now(UTC).isoformat(timespec='seconds')}"
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "UPDATE speakers SET name = $2, model = $3, embedding = $4,"
                " consent_by = COALESCE($6, consent_by),"
                " consent_at = CASE WHEN $6::text IS NULL THEN consent_at ELSE $7 END,"
                " consent_note = CASE WHEN $6::text IS NULL THEN consent_note ELSE $8 END,"
                " expires_at = COALESCE($9, expires_at),"
                " source = CASE WHEN $10::text IS NULL THEN source"
                "   ELSE concat_ws(' + ', source, $10::text) END"
                f" WHERE id = $1 AND {_mine(5)} RETURNING *",
                _uuid(speaker_id),
                name,
                model,
                list(embedding),
                _owner(owner),
                *_consent_values(consent),
                expires_at,
                added if added_source is not None else None,
            )
        if row is None:
            raise NotFound(f"no enrolled speaker with id {speaker_id}")
        return self._speaker(row)

    async def speaker_voiceprint(
        self, speaker_id: str, owner: str | None = None
    ) -> tuple[Speaker, list[float]]:
        """An enrolled speaker and their embedding."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT * FROM speakers WHERE id = $1 AND {_mine(2)}",
                _uuid(speaker_id),
                _owner(owner),
            )
        if row is None:
            raise NotFound(f"no enrolled speaker with id {speaker_id}")
        return self._speaker(row), list(row["embedding"])

    # ------------------------------------------------------------ corrections

    async def add_correction(
        self, job_id: str, kind: str, payload: dict[str, Any], owner: str | None = None
    ) -> Correction:
        """Record a person's correction to a job's result (the artifacts stay untouched)."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "INSERT INTO corrections (id, job_id, kind, payload)"
                " SELECT $1, id, $3, $4 FROM jobs WHERE id = $2 AND " + _mine(5) + " RETURNING *",
                uuid.uuid4(),
                _uuid(job_id),
                kind,
                payload,
                _owner(owner),
            )
        if row is None:
            raise NotFound(f"no job with id {job_id}")
        return self._correction(row)

    async def list_corrections(self, job_id: str, owner: str | None = None) -> list[Correction]:
        """The job's corrections, oldest first: the order they are applied in."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT c.* FROM corrections c JOIN jobs j ON j.id = c.job_id"
                f" WHERE c.job_id = $1 AND {_mine(2).replace('owner', 'j.owner')}"
                " ORDER BY c.created_at, c.id",
                _uuid(job_id),
                _owner(owner),
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
                f" AND {_mine(3).replace('owner', 'j.owner')} RETURNING c.*",
                _uuid(correction_id),
                _uuid(job_id),
                _owner(owner),
            )
        if row is None:
            raise NotFound(f"job {job_id} has no correction {correction_id}")
        return self._correction(row)

    @staticmethod
    def _correction(row: asyncpg.Record) -> Correction:
        return Correction(
            id=str(row["id"]),
            job_id=str(row["job_id"]),
            kind=row["kind"],
            payload=row["payload"],
            created_at=row["created_at"],
        )

    # ------------------------------------------------------------ mapping

    @staticmethod
    def _speaker(row: asyncpg.Record) -> Speaker:
        return Speaker(
            id=str(row["id"]),
            name=row["name"],
            model=row["model"],
            num_clips=len(row["clip_uris"]),
            clip_uris=list(row["clip_uris"]),
            created_at=row["created_at"],
            consent_by=row["consent_by"],
            consent_at=row["consent_at"],
            consent_note=row["consent_note"],
            source=row["source"],
            expires_at=row["expires_at"],
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

    # ------------------------------------------------------------ identification calibration

    async def save_calibration(
        self,
        *,
        model: str,
        threshold: float,
        target_far: float,
        far: float,
        frr: float,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Store (or replace) the identification threshold calibrated for `model`."""
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO calibrations (model, threshold, target_far, far, frr, details)"
                " VALUES ($1, $2, $3, $4, $5, $6)"
                " ON CONFLICT (model) DO UPDATE SET threshold = $2, target_far = $3, far = $4,"
                " frr = $5, details = $6, created_at = now()",
                model,
                threshold,
                target_far,
                far,
                frr,
                details or {},
            )

    async def calibrated_threshold(self, model: str | None) -> float | None:
        """The threshold calibrated for this embedding model, or None when there is none."""
        if model is None:
            return None
        async with self.pool.acquire() as conn:
            value = await conn.fetchval(
                "SELECT threshold FROM calibrations WHERE model = $1", model
            )
        return float(value) if value is not None else None

    async def current_embedding_model(self) -> str | None:
        """The speaker-embedding model of the latest identify run: voiceprints made by
        another model are stale (identify ignores them). None before any identify ran."""
        async with self.pool.acquire() as conn:
            value = await conn.fetchval(
                "SELECT model FROM artifacts WHERE stage = 'identify' AND model IS NOT NULL"
                " ORDER BY created_at DESC LIMIT 1"
            )
        return str(value) if value is not None else None

    async def identify_feedback(
        self, kind: str, owner: str | None = None
    ) -> list[tuple[str, list[dict[str, Any]]]]:
        """(uri of the job's current identify artifact, its corrections of `kind` oldest
        first) for every job (of `owner`) with at least one such correction."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT a.uri, jsonb_agg(c.payload ORDER BY c.created_at, c.id) AS payloads"
                " FROM corrections c"
                " JOIN jobs j ON j.id = c.job_id"
                " JOIN job_stages s ON s.job_id = c.job_id AND s.stage = 'identify'"
                " JOIN artifacts a ON a.id = s.artifact_id"
                f" WHERE c.kind = $1 AND {_mine(2).replace('owner', 'j.owner')} GROUP BY a.uri",
                kind,
                _owner(owner),
            )
        return [(r["uri"], list(r["payloads"])) for r in rows]
