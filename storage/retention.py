"""Retention, store side: which jobs are past `retention_days` (deleting one everywhere is
the gateway's jobs service, gateway/services/jobs.py); voiceprints past their `expires_at`,
deleted with their enrollment clips."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from core.errors import NotFound
from core.jobs import Speaker
from storage.artifacts import ArtifactStore, speaker_prefix
from storage.jobs import JobStore
from storage.speakers import SpeakerStore

log = logging.getLogger("scribe.retention")


async def expired_job_batches(
    jobs: JobStore, retention_days: float, *, now: datetime | None = None
) -> AsyncIterator[list[str]]:
    """The ids of the jobs created more than `retention_days` ago, a batch at a time, until
    none is left; a batch never repeats an id given before. The caller deletes each batch
    (gateway/services/jobs.py, `sweep_expired`) before asking for the next."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    given: set[str] = set()
    while True:
        batch = [j for j in await jobs.jobs_created_before(cutoff) if j not in given]
        if not batch:
            return
        given.update(batch)
        yield batch


def delete_voiceprint_files(store: ArtifactStore, speaker: Speaker) -> list[str]:
    """Delete every enrollment clip of `speaker` (each recorded clip, then whatever else is
    under its folder); returns the clip keys that are still there (none, unless the store
    failed silently), so callers can refuse to report a deletion that did not happen."""
    keys: list[str] = []
    for uri in speaker.clip_uris:
        try:
            keys.append(store.key_of(uri))
        except ValueError:
            log.warning("voiceprint %s: clip %s is not in this store", speaker.id, uri)
    for key in keys:
        store.delete(key)
    store.delete_prefix(speaker_prefix(speaker.id))
    return [k for k in keys if store.exists(k)]


async def sweep_expired_voiceprints(
    speakers: SpeakerStore, store: ArtifactStore, *, now: datetime | None = None
) -> list[str]:
    """Delete every voiceprint whose `expires_at` has passed (clips first, then the row,
    so a crash in between leaves a row to find next time); returns their ids."""
    cutoff = now or datetime.now(UTC)
    deleted: list[str] = []
    tried: set[str] = set()
    while True:
        batch = [s for s in await speakers.speakers_expired_at(cutoff) if s.id not in tried]
        if not batch:
            return deleted
        for speaker in batch:
            tried.add(speaker.id)
            left = await asyncio.to_thread(delete_voiceprint_files, store, speaker)
            if left:  # the row stays, so the next sweep tries again
                log.error("voiceprint %s: clips not deleted: %s", speaker.id, ", ".join(left))
                continue
            try:
                await speakers.delete_speaker(speaker.id)
            except NotFound:
                pass  # deleted meanwhile by its owner
            deleted.append(speaker.id)
        log.info("retention: deleted %d expired voiceprint(s)", len(batch))
