"""Identification calibration: the threshold calibrated for each speaker-embedding model
(`scribe calibrate`), and which model identify uses now."""

from __future__ import annotations

from typing import Any

import asyncpg


class CalibrationStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def save(
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

    async def current_embedding_model(self, identify: str) -> str | None:
        """The speaker-embedding model of the latest run of stage `identify` (the graph's
        producer of the Identification): voiceprints made by another model are stale
        (identify ignores them). None before any identify ran."""
        async with self.pool.acquire() as conn:
            value = await conn.fetchval(
                "SELECT model FROM artifacts WHERE stage = $1 AND model IS NOT NULL"
                " ORDER BY created_at DESC LIMIT 1",
                identify,
            )
        return str(value) if value is not None else None
