"""The speaker store: enrolled speakers and their voiceprints, with the consent and expiry
each was kept under."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from core.errors import NotFound
from core.jobs import Consent, Speaker
from storage.sql import mine, owner_id, parse_id


def _consent_values(consent: Consent | None) -> tuple[str | None, datetime | None, str | None]:
    """(consent_by, consent_at, consent_note) column values, all None without consent."""
    if consent is None:
        return None, None, None
    return consent.by, consent.at, consent.note


class SpeakerStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

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
                owner_id(owner),
                source,
                *_consent_values(consent),
                expires_at,
            )
        assert row is not None
        return self._speaker(row)

    async def list_speakers(self, owner: str | None = None) -> list[Speaker]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT * FROM speakers WHERE {mine(1)} ORDER BY name, created_at",
                owner_id(owner),
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
                owner_id(owner),
            )
        return [(str(r["id"]), r["name"], r["model"], list(r["embedding"])) for r in rows]

    async def delete_speaker(self, speaker_id: str, owner: str | None = None) -> Speaker:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"DELETE FROM speakers WHERE id = $1 AND {mine(2)} RETURNING *",
                parse_id(speaker_id),
                owner_id(owner),
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
                f" WHERE id = $1 AND {mine(5)} RETURNING *",
                parse_id(speaker_id),
                name,
                model,
                list(embedding),
                owner_id(owner),
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
                f"SELECT * FROM speakers WHERE id = $1 AND {mine(2)}",
                parse_id(speaker_id),
                owner_id(owner),
            )
        if row is None:
            raise NotFound(f"no enrolled speaker with id {speaker_id}")
        return self._speaker(row), list(row["embedding"])

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
