"""Job events on Redis: kept in a Stream (for late or reconnecting clients) and
published on Pub/Sub (for live ones).

A subscriber first subscribes, then replays the stream after the last id it has seen,
then follows Pub/Sub, dropping anything at or before what it already delivered: no gap,
no duplicate, whatever the timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis

from core.events import TERMINAL_EVENTS, JobEvent


def _id_key(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


class EventBus:
    def __init__(self, redis: aioredis.Redis, prefix: str, *, maxlen: int = 2000) -> None:
        self.redis = redis
        self.prefix = prefix
        self.maxlen = maxlen

    def stream_key(self, job_id: str) -> str:
        return f"{self.prefix}:events:{job_id}"

    def channel(self, job_id: str) -> str:
        return f"{self.prefix}:live:{job_id}"

    async def publish(self, event: JobEvent) -> JobEvent:
        body = event.model_dump_json(exclude={"id"})
        event_id = await self.redis.xadd(
            self.stream_key(event.job_id), {"e": body}, maxlen=self.maxlen, approximate=True
        )
        if isinstance(event_id, bytes):
            event_id = event_id.decode()
        stored = event.model_copy(update={"id": str(event_id)})
        await self.redis.publish(self.channel(event.job_id), stored.model_dump_json())
        return stored

    async def history(self, job_id: str, after: str | None = None) -> list[JobEvent]:
        start = f"({after}" if after else "-"
        entries: Any = await self.redis.xrange(self.stream_key(job_id), min=start, max="+")
        return [self._decode(eid, fields) for eid, fields in entries]

    async def delete(self, job_id: str) -> None:
        await self.redis.delete(self.stream_key(job_id))

    async def follow(
        self,
        job_id: str,
        after: str | None = None,
        *,
        stop_at_terminal: bool = True,
        idle_timeout: float | None = None,
    ) -> AsyncIterator[JobEvent]:
        """Every event after `after`, then live ones; ends after a terminal event."""
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(self.channel(job_id))
        try:
            last = _id_key(after) if after else (0, 0)
            for event in await self.history(job_id, after):
                last = _id_key(event.id or "0-0")
                yield event
                if stop_at_terminal and event.type in TERMINAL_EVENTS:
                    return
            while True:
                msg = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=idle_timeout or 30.0
                )
                if msg is None:
                    if idle_timeout is not None:
                        return
                    continue
                data = msg["data"]
                event = JobEvent.model_validate_json(data)
                if event.id is None or _id_key(event.id) <= last:
                    continue
                last = _id_key(event.id)
                yield event
                if stop_at_terminal and event.type in TERMINAL_EVENTS:
                    return
        finally:
            try:
                await pubsub.unsubscribe()
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            except (ConnectionError, OSError, asyncio.CancelledError):
                pass

    @staticmethod
    def _decode(event_id: bytes | str, fields: dict[bytes | str, bytes | str]) -> JobEvent:
        raw = fields.get(b"e", fields.get("e"))
        assert raw is not None
        eid = event_id.decode() if isinstance(event_id, bytes) else event_id
        return JobEvent.model_validate_json(raw).model_copy(update={"id": eid})
