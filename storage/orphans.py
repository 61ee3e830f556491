"""Objects nothing refers to: half-written temporaries and uploads whose job never existed.

An interrupted write leaves `<key>.tmp-<hex>` behind (AtomicWriter moves a temporary into
place only once complete), and a gateway killed between storing an upload and creating
its job row leaves `jobs/<id>/` with no job. Both are removed once older than a grace
period, so that a write or an upload in progress is never touched.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from storage.artifacts import ArtifactStore, job_prefix

log = logging.getLogger("scribe.orphans")
TMP_MARK = ".tmp-"


@dataclass
class SweepReport:
    temporaries: list[str] = field(default_factory=list)
    job_dirs: list[str] = field(default_factory=list)


def _mtime(info: dict[str, Any]) -> float | None:
    for name in ("mtime", "LastModified", "last_modified", "created"):
        value = info.get(name)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
    return None


def _old(info: dict[str, Any], cutoff: float) -> bool:
    mtime = _mtime(info)
    return mtime is not None and mtime < cutoff


def find_candidates(
    store: ArtifactStore, max_age_s: float, now: float | None = None
) -> tuple[list[str], dict[str, float]]:
    """(old temporary keys, {job id: newest mtime of its folder}) under the store's root."""
    cutoff = (now if now is not None else time.time()) - max_age_s
    root = store.root.rstrip("/")
    temporaries: list[str] = []
    newest: dict[str, float] = {}
    if not store.fs.exists(root):
        return temporaries, newest
    listing: dict[str, dict[str, Any]] = store.fs.find(root, detail=True)
    for path, info in listing.items():
        # Local paths keep their leading slash, s3fs's have none: compare without it.
        rel = path.lstrip("/")[len(root.lstrip("/")) :].lstrip("/")
        name = rel.rsplit("/", 1)[-1]
        if TMP_MARK in name and _old(info, cutoff):
            temporaries.append(rel)
        parts = rel.split("/")
        if len(parts) >= 2 and parts[0] == "jobs":
            mtime = _mtime(info) or time.time()
            newest[parts[1]] = max(newest.get(parts[1], 0.0), mtime)
    return temporaries, {j: t for j, t in newest.items() if t < cutoff}


async def sweep(store: ArtifactStore, pool: asyncpg.Pool, max_age_s: float) -> SweepReport:
    """Remove old temporaries, and job folders older than `max_age_s` with no job row."""
    report = SweepReport()
    temporaries, old_dirs = await asyncio.to_thread(find_candidates, store, max_age_s)
    for key in temporaries:
        await asyncio.to_thread(store.delete, key)
        report.temporaries.append(key)
    ids: dict[uuid.UUID, str] = {}
    for name in old_dirs:
        try:
            ids[uuid.UUID(name)] = name
        except ValueError:
            continue  # not a folder the gateway made; leave it alone
    if ids:
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT id FROM jobs WHERE id = ANY($1::uuid[])", list(ids))
        known = {r["id"] for r in rows}
        for jid, name in ids.items():
            if jid in known:
                continue
            await asyncio.to_thread(store.delete_prefix, job_prefix(name))
            report.job_dirs.append(name)
    if report.temporaries or report.job_dirs:
        log.warning(
            "removed %d temporary object(s) and %d job folder(s) without a job",
            len(report.temporaries),
            len(report.job_dirs),
        )
    return report
