"""Crash safety for the stage runner: which errors are worth retrying, the lease heartbeat,
the final event published once, and the reaper that takes over after a dead worker.

The broker alone cannot do this: it redelivers an unacknowledged message only after its
idle timeout (an hour here, longer than the longest stage), and only once another message
arrives. The reaper runs in every worker and looks at PostgreSQL instead:

- a stage whose lease expired while 'running' lost its worker: it is queued and sent
  again, within about one lease TTL of the kill (what follows it is sent when it succeeds);
- a job with nothing recorded for `stall_after_s`, stages that may run (queued, inputs
  done) and no message waiting in the queue lost those messages (killed between two
  stages, a Redis that lost its data, a gateway killed after creating the job): they are
  sent again;
- a job whose outcome was committed but whose final event may not have gone out (killed in
  between) gets it, once;
- now and then, temporary and orphaned objects are swept from storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

import asyncpg
import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from taskiq import AsyncBroker

from core.errors import ScribeError, StageFailed
from core.events import TERMINAL_EVENTS, JobEvent
from core.graph import StageGraph
from core.settings import Settings
from events.bus import EventBus
from events.queue import group_name, make_broker, queue_key, send_stages
from storage import orphans
from storage.artifacts import ArtifactStore
from storage.jobs import JobStore
from storage.leases import LeaseStore, Stalled

log = logging.getLogger("scribe.recovery")

_TRANSIENT: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, "starting up"
    asyncpg.exceptions.TooManyConnectionsError,
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    OSError,
)
# OSErrors that will not go away by waiting.
_PERMANENT_OS: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def is_transient(exc: BaseException) -> bool:
    """Worth another attempt: a dependency that did not answer, not a bad input or a bug."""
    if isinstance(exc, StageFailed):
        return not exc.permanent
    if isinstance(exc, ScribeError):
        return False
    if isinstance(exc, _PERMANENT_OS):
        return False
    return isinstance(exc, _TRANSIENT)


def backoff_s(settings: Settings, attempt: int) -> float:
    """The pause after failed attempt number `attempt` (1-based): doubling, capped, with
    up to 20 % jitter so workers that failed together do not retry together."""
    base = settings.retry_backoff_s * 2.0 ** max(0, attempt - 1)
    return min(settings.retry_backoff_max_s, base) * (1 + random.random() * 0.2)


async def retrying(settings: Settings, what: str, call: Any) -> Any:
    """`await call()` with the stage retry policy for transient errors (bookkeeping calls
    around a stage: the database or Redis restarting must not fail the job)."""
    attempt = 1
    while True:
        try:
            return await call()
        except Exception as exc:
            if not is_transient(exc) or attempt >= settings.stage_max_attempts:
                raise
            delay = backoff_s(settings, attempt)
            log.warning(
                "%s failed (%s: %s); retrying in %.1f s", what, type(exc).__name__, exc, delay
            )
            await asyncio.sleep(delay)
            attempt += 1


class Heartbeat:
    """Renews a stage's lease every third of its TTL while the stage runs."""

    def __init__(self, leases: LeaseStore, job_id: str, stage: str, owner: str, ttl_s: float):
        self.leases, self.job_id, self.stage, self.owner, self.ttl_s = (
            leases,
            job_id,
            stage,
            owner,
            ttl_s,
        )
        self.lost = False
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Heartbeat:
        self._task = asyncio.create_task(self._run(), name=f"lease {self.job_id}:{self.stage}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                held = await self.leases.renew(self.job_id, self.stage, self.owner, self.ttl_s)
            except Exception as exc:  # the database restarting: try again next beat
                log.warning("could not renew the lease of %s/%s: %s", self.job_id, self.stage, exc)
                continue
            if not held:
                log.error(
                    "lost the lease of %s/%s: another worker took it over", self.job_id, self.stage
                )
                self.lost = True
                return


# ---------------------------------------------------------------- final events, once


async def terminal_published(bus: EventBus, job_id: str) -> bool:
    """Whether the job's current run already has its final event: reading the job's event
    stream backwards, a job.succeeded/job.failed comes before the run's job.queued."""
    key = bus.stream_key(job_id)
    upper = "+"
    for _ in range(50):
        entries: Any = await bus.redis.xrevrange(key, max=upper, min="-", count=200)
        if not entries:
            return False
        for event_id, fields in entries:
            event = bus._decode(event_id, fields)
            if event.type in TERMINAL_EVENTS:
                return True
            if event.type == "job.queued":
                return False
        last = entries[-1][0]
        upper = f"({last.decode() if isinstance(last, bytes) else last}"
    return False


async def publish_terminal_once(bus: EventBus, leases: LeaseStore, event: JobEvent) -> bool:
    """Publish a job.succeeded / job.failed unless this run already has one; then mark the
    job's outcome as announced. Only one process at a time gets here for a job (the
    holder of the last stage's lease, or the reaper after it)."""
    sent = False
    if not await terminal_published(bus, event.job_id):
        await bus.publish(event)
        sent = True
    await leases.terminal_published(event.job_id)
    return sent


# ---------------------------------------------------------------- the reaper


class Reaper:
    """The periodic recovery task of one worker (several workers' reapers may run: every
    takeover is a conditional update that one of them wins)."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        store: ArtifactStore,
        bus: EventBus,
        graph: StageGraph,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.redis = redis
        self.store = store
        self.bus = bus
        self.leases = LeaseStore(pool, graph)
        self.jobs = JobStore(pool, graph)
        self._broker: AsyncBroker | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_sweep = 0.0
        self.kicked: list[tuple[str, str]] = []  # (job id, stage), for tests and logs

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="scribe reaper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._broker is not None:
            with contextlib.suppress(Exception):
                await self._broker.shutdown()
            self._broker = None

    async def _run(self) -> None:
        interval = self.settings.reaper_interval_s
        # Workers started together should not all look at the same moment.
        await asyncio.sleep(random.random() * interval)
        while True:
            try:
                await self.once()
            except Exception as exc:  # Redis or PostgreSQL away: next round
                log.warning("reaper round failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(interval * (0.8 + random.random() * 0.4))

    async def broker(self) -> AsyncBroker:
        if self._broker is None:
            assert self.settings.redis_url
            broker = make_broker(self.settings, self.settings.redis_url)
            await broker.startup()
            self._broker = broker
        return self._broker

    async def kick(self, job_id: str, *stages: str) -> None:
        await send_stages(await self.broker(), job_id, stages)
        self.kicked.extend((job_id, s) for s in stages)

    async def once(self) -> None:
        """One round of every check."""
        for job_id, stage in await self.leases.take_over_expired():
            log.warning("job %s: the worker running %s died; queueing it again", job_id, stage)
            await self.kick(job_id, stage)
        stalled = await self.leases.stalled(self.settings.stall_after_s)
        if stalled:
            waiting = await self.queued_job_ids()
            for job in stalled:
                if job.job_id in waiting:
                    continue  # its next message is in the queue: just a long queue
                await self._resume(job)
        for job_id in await self.leases.unpublished_terminal(older_than_s=1.0):
            await self._announce(job_id)
        age = self.settings.orphan_max_age_s
        if time.monotonic() - self._last_sweep > min(age / 4, 600.0):
            self._last_sweep = time.monotonic()
            await orphans.sweep(self.store, self.pool, age)

    async def _resume(self, job: Stalled) -> None:
        if not await self.leases.claim_stalled(job):
            return
        log.warning(
            "job %s: stalled before %s with nothing queued; queueing it again",
            job.job_id,
            ", ".join(job.stages),
        )
        await self.kick(job.job_id, *job.stages)

    async def _announce(self, job_id: str) -> None:
        job = await self.jobs.get_job(job_id)
        if job.status == "succeeded":
            event = JobEvent(type="job.succeeded", job_id=job_id)
        elif job.status == "failed":
            stage = job.error.stage if job.error else None
            message = job.error.message if job.error else "the job failed"
            event = JobEvent(type="job.failed", job_id=job_id, stage=stage, message=message)
        else:
            return
        await publish_terminal_once(self.bus, self.leases, event)

    async def queued_job_ids(self) -> set[str]:
        """Job ids named by messages not yet delivered to any worker of our group."""
        queue, group = queue_key(self.settings), group_name(self.settings)
        try:
            groups: Any = await self.redis.xinfo_groups(queue)
        except redis_errors.ResponseError:
            return set()  # no stream yet
        last = "0-0"
        for g in groups:
            name = g.get("name") or g.get(b"name")
            if isinstance(name, bytes):
                name = name.decode()
            if name == group:
                raw = g.get("last-delivered-id") or g.get(b"last-delivered-id") or "0-0"
                last = raw.decode() if isinstance(raw, bytes) else str(raw)
        ids: set[str] = set()
        lower = f"({last}"
        while True:
            entries: Any = await self.redis.xrange(queue, min=lower, max="+", count=500)
            if not entries:
                return ids
            for _entry_id, fields in entries:
                data = fields.get(b"data") or fields.get("data") or b""
                ids.update(_job_ids_in(data))
            last_id = entries[-1][0]
            lower = f"({last_id.decode() if isinstance(last_id, bytes) else last_id}"


def _job_ids_in(data: bytes | str) -> set[str]:
    import json

    try:
        message = json.loads(data)
    except ValueError:
        return set()
    args = message.get("args") if isinstance(message, dict) else None
    return {a for a in args or () if isinstance(a, str)}
