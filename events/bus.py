"""Job events on Redis: kept in a Stream (for late or reconnecting clients) and
published on Pub/Sub (for live ones).

A follower first registers for live events, then replays the stream after the last id
it has seen, then takes the live ones, dropping anything at or before what it already
delivered: no gap, no duplicate, whatever the timing.

Live events reach a process through one Pub/Sub connection, pattern-subscribed to every
job's channel (`LiveFanout`): each message is read and parsed once and handed to the
followers of its job, so fifty browsers watching a job cost one connection, not fifty.
When that connection drops, the fan-out reconnects and every follower re-reads the
stream after its last event, so nothing published meanwhile is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.events import TERMINAL_EVENTS, JobEvent


def _id_key(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


log = logging.getLogger(__name__)

# XADD, then PUBLISH the same event with its new id spliced in as the first JSON member.
_PUBLISH = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[2])
redis.call('PUBLISH', KEYS[2], '{"id":"' .. id .. '",' .. string.sub(ARGV[2], 2))
return id
"""

# Put in a follower's queue after the fan-out reconnected: re-read the stream.
_RESYNC = None


class LiveFanout:
    """One pattern subscription for all of a process's followers (see the module doc)."""

    def __init__(self, redis: aioredis.Redis, channel_prefix: str) -> None:
        self.redis = redis
        self.channel_prefix = channel_prefix
        self._followers: dict[str, set[asyncio.Queue[JobEvent | None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def ready(self, timeout: float = 10.0) -> None:
        """Start the reader if needed and wait until its subscription is confirmed."""
        if self._task is None or self._task.done():
            self._ready.clear()
            self._task = asyncio.create_task(self._run(), name="scribe-live-fanout")
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            raise ConnectionError("live events are unavailable: Redis does not answer") from None

    @contextlib.contextmanager
    def watch(self, job_id: str) -> Iterator[asyncio.Queue[JobEvent | None]]:
        """A queue that receives the job's live events while the block runs."""
        queue: asyncio.Queue[JobEvent | None] = asyncio.Queue()
        self._followers.setdefault(job_id, set()).add(queue)
        try:
            yield queue
        finally:
            followers = self._followers.get(job_id)
            if followers is not None:
                followers.discard(queue)
                if not followers:
                    del self._followers[job_id]

    @property
    def followers(self) -> int:
        return sum(len(q) for q in self._followers.values())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = 0.1
        connected_before = False
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.psubscribe(f"{self.channel_prefix}*")
                while (await pubsub.get_message(timeout=5.0) or {}).get("type") != "psubscribe":
                    pass
                self._ready.set()
                backoff = 0.1
                if connected_before:
                    # Whatever was published while the connection was down is in the
                    # streams: every follower re-reads its job's stream.
                    for queues in self._followers.values():
                        for queue in queues:
                            queue.put_nowait(_RESYNC)
                connected_before = True
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=30.0)
                    if msg is not None:
                        self._dispatch(msg)
            except (ConnectionError, OSError, RedisError) as e:
                self._ready.clear()
                log.warning("live events: Redis connection lost (%s); reconnecting", e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:
                # Whatever it was, followers must not be left without live events.
                self._ready.clear()
                log.exception("live events: the reader failed; restarting it")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _dispatch(self, msg: dict[str, Any]) -> None:
        channel = msg.get("channel", b"")
        if isinstance(channel, bytes):
            channel = channel.decode()
        queues = self._followers.get(channel[len(self.channel_prefix) :])
        if not queues:
            return
        try:
            event = JobEvent.model_validate_json(msg["data"])
        except ValueError:
            log.warning("live events: dropped a malformed message on %s", channel)
            return
        for queue in queues:
            queue.put_nowait(event)


class EventBus:
    def __init__(self, redis: aioredis.Redis, prefix: str, *, maxlen: int = 2000) -> None:
        self.redis = redis
        self.prefix = prefix
        self.maxlen = maxlen
        self.live = LiveFanout(redis, f"{prefix}:live:")
        self._publish = redis.register_script(_PUBLISH)

    async def aclose(self) -> None:
        await self.live.aclose()

    def stream_key(self, job_id: str) -> str:
        return f"{self.prefix}:events:{job_id}"

    def channel(self, job_id: str) -> str:
        # The fan-out finds the job in a channel's name by this same prefix.
        return f"{self.live.channel_prefix}{job_id}"

    async def publish(self, event: JobEvent) -> JobEvent:
        """Append the event to the job's stream and announce it live, in one round trip.

        The live message is the stored event with its stream id, so a follower can drop
        what it already has from the stream.
        """
        body = event.model_dump_json(exclude={"id"})
        event_id = await self._publish(
            keys=[self.stream_key(event.job_id), self.channel(event.job_id)],
            args=[self.maxlen, body],
        )
        if isinstance(event_id, bytes):
            event_id = event_id.decode()
        return event.model_copy(update={"id": str(event_id)})

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
        """Every event after `after`, then live ones; ends after a terminal event.

        With `idle_timeout`, also ends when no event came for that many seconds.
        """
        await self.live.ready()
        with self.live.watch(job_id) as queue:
            last = _id_key(after) if after else (0, 0)
            replay = True
            while True:
                if replay:
                    replay = False
                    for event in await self.history(job_id, after):
                        key = _id_key(event.id or "0-0")
                        if key <= last:
                            continue
                        last = key
                        yield event
                        if stop_at_terminal and event.type in TERMINAL_EVENTS:
                            return
                try:
                    item = await asyncio.wait_for(queue.get(), idle_timeout or 30.0)
                except TimeoutError:
                    if idle_timeout is not None:
                        return
                    continue
                if item is _RESYNC:
                    replay, after = True, f"{last[0]}-{last[1]}" if last != (0, 0) else after
                    continue
                if item.id is None or _id_key(item.id) <= last:
                    continue
                last = _id_key(item.id)
                yield item
                if stop_at_terminal and item.type in TERMINAL_EVENTS:
                    return

    @staticmethod
    def _decode(event_id: bytes | str, fields: dict[bytes | str, bytes | str]) -> JobEvent:
        raw = fields.get(b"e", fields.get("e"))
        assert raw is not None
        eid = event_id.decode() if isinstance(event_id, bytes) else event_id
        return JobEvent.model_validate_json(raw).model_copy(update={"id": eid})
