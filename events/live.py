"""Live meetings on their own queue (docs/live.md): the stream live workers read, who holds
which meeting and how much room they have, and the end of a meeting, which turns its
recording into the job's upload and queues the graph like any upload.

A live worker runs one long task per meeting; on the stages' queue it would hold a slot
an upload waits for, and an upload would hold the slot a meeting waits for. So the live
task has a stream and a consumer group of its own, read only by `scribe live-worker`.

Room is kept in Redis with expiring keys a live worker refreshes while it runs: one per
worker process (`worker:<name>` = how many meetings it may follow) and one per meeting it
follows (`session:<job>` = the worker's name). A dead worker's keys expire, so its room
and its meetings free themselves; the gateway sends a meeting whose key expired again
when its socket reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from taskiq import AsyncBroker
from taskiq.kicker import AsyncKicker

from core.events import JobEvent
from core.graph import StageGraph
from core.settings import Settings
from events.bus import EventBus
from events.queue import make_broker, send_stages
from storage.artifacts import ArtifactStore
from storage.jobs import JobStore
from storage.live import LiveRecording, LiveStopped

log = logging.getLogger("scribe.live")

LIVE_TASK = "scribe.live.follow"
# How long a worker's and a meeting's keys live without being refreshed.
HOLD_TTL_S = 15
REFRESH_S = 5.0


def live_queue_key(settings: Settings) -> str:
    return f"{settings.redis_prefix}:live-queue"


def make_live_broker(settings: Settings, redis_url: str) -> AsyncBroker:
    """The broker of the live meetings' queue (same Redis, another stream and group)."""
    return make_broker(
        settings,
        redis_url,
        queue=live_queue_key(settings),
        group=f"{settings.redis_prefix}:live-workers",
    )


async def send_live(broker: AsyncBroker, job_id: str) -> None:
    """Ask a live worker to follow the meeting `job_id`."""
    kicker: AsyncKicker[Any, Any] = AsyncKicker(LIVE_TASK, broker, labels={})
    await kicker.kiq(job_id)


class LiveRoom:
    """Which live workers run, their room, and the meetings they follow."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = f"{prefix}:meeting"

    def _worker(self, name: str) -> str:
        return f"{self.prefix}:worker:{name}"

    def _session(self, job_id: str) -> str:
        return f"{self.prefix}:session:{job_id}"

    async def announce_worker(self, name: str, capacity: int) -> None:
        await self.redis.set(self._worker(name), capacity, ex=HOLD_TTL_S)

    async def forget_worker(self, name: str) -> None:
        await self.redis.delete(self._worker(name))

    async def hold(self, job_id: str, worker: str) -> bool:
        """Take the meeting for `worker` (True), or refresh its hold; False when another
        worker holds it (a second delivery of the same meeting)."""
        key = self._session(job_id)
        if await self.redis.set(key, worker, ex=HOLD_TTL_S, nx=True):
            return True
        held: Any = await self.redis.get(key)
        held_by = held.decode() if isinstance(held, bytes) else held
        if held_by == worker:
            await self.redis.expire(key, HOLD_TTL_S)
            return True
        return False

    async def release(self, job_id: str, worker: str) -> None:
        key = self._session(job_id)
        held: Any = await self.redis.get(key)
        if (held.decode() if isinstance(held, bytes) else held) == worker:
            await self.redis.delete(key)

    async def followed(self, job_id: str) -> bool:
        return bool(await self.redis.exists(self._session(job_id)))

    async def _count(self, pattern: str) -> tuple[int, int]:
        keys, total = 0, 0
        async for key in self.redis.scan_iter(match=pattern, count=500):
            value: Any = await self.redis.get(key)
            if value is not None:
                keys += 1
                try:
                    total += int(value)
                except ValueError:  # a worker's name, for a meeting's key
                    pass
        return keys, total

    async def usage(self) -> tuple[int, int]:
        """(meetings followed now, meetings every live worker together may follow)."""
        _, capacity = await self._count(f"{self.prefix}:worker:*")
        followed, _ = await self._count(f"{self.prefix}:session:*")
        return followed, capacity


@dataclass
class MeetingEnd:
    stopped: LiveStopped
    queued: bool  # False: it had ended already (a second Stop), nothing was queued again


async def end_meeting(
    *,
    store: ArtifactStore,
    jobs: JobStore,
    bus: EventBus,
    broker: AsyncBroker,
    graph: StageGraph,
    job_id: str,
    reason: str,
) -> MeetingEnd:
    """End the meeting: mark it stopped (the live worker sees it and writes its draft),
    join its chunks into the job's upload, and queue the graph's first stages on it, as an
    upload's job is. Safe to call twice or from two places at once: one of them queues."""
    recording = LiveRecording(store, job_id)
    stopped = await asyncio.to_thread(recording.mark_stopped, reason)
    job = await jobs.get_job(job_id)
    if job.upload_sha256:
        return MeetingEnd(stopped, queued=False)
    stored = await asyncio.to_thread(recording.assemble_wav)
    moved = await jobs.start_recorded(
        job_id, size_bytes=stored.size_bytes, upload_uri=stored.uri, upload_sha256=stored.sha256
    )
    if not moved:
        return MeetingEnd(stopped, queued=False)
    roots = graph.roots
    await bus.publish(
        JobEvent(
            type="job.queued",
            job_id=job_id,
            stage=roots[0],
            message=f"the meeting ended ({reason}); queued from {', '.join(roots)}",
        )
    )
    await send_stages(broker, job_id, roots)
    log.info("live meeting %s ended (%s): %.1f s recorded", job_id, reason, stopped.duration_s)
    return MeetingEnd(stopped, queued=True)
