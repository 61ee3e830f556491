"""What a worker process holds between tasks: connections, stores and resident models."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg
import redis.asyncio as aioredis

from core.events import JobEvent, ProgressCallback
from core.graph import StageGraph, load_graph
from core.settings import Settings
from events.bus import EventBus
from stages.engines.models import ModelManager
from storage.artifact_records import ArtifactRecordStore
from storage.artifacts import ArtifactStore
from storage.calibration import CalibrationStore
from storage.corrections import CorrectionStore
from storage.db import create_pool, migrate
from storage.jobs import JobStore
from storage.leases import LeaseStore
from storage.speakers import SpeakerStore

if TYPE_CHECKING:
    from stages.recovery import Reaper


@dataclass
class WorkerState:
    settings: Settings
    pool: asyncpg.Pool
    redis: aioredis.Redis
    jobs: JobStore
    records: ArtifactRecordStore
    speakers: SpeakerStore
    calibration: CalibrationStore
    corrections: CorrectionStore
    store: ArtifactStore
    bus: EventBus
    models: ModelManager
    leases: LeaseStore
    graph: StageGraph
    reaper: Reaper | None = None
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    tasks_done: int = 0

    @classmethod
    async def connect(cls, settings: Settings, *, reaper: bool = True) -> WorkerState:
        """Connect to everything; with `reaper`, also start this worker's recovery task."""
        if not settings.database_url or not settings.redis_url:
            raise RuntimeError(
                "the worker needs SCRIBE_DATABASE_URL and SCRIBE_REDIS_URL "
                "(`scribe serve` / `scribe run` set them for the embedded servers)"
            )
        pool = await create_pool(settings.database_url, max_size=4)
        await migrate(pool)
        redis = aioredis.Redis.from_url(settings.redis_url)
        graph = load_graph(settings.stage_graph)
        state = cls(
            settings=settings,
            pool=pool,
            redis=redis,
            jobs=JobStore(pool, graph),
            records=ArtifactRecordStore(pool),
            speakers=SpeakerStore(pool),
            calibration=CalibrationStore(pool),
            corrections=CorrectionStore(pool),
            store=ArtifactStore.from_settings(settings),
            bus=EventBus(redis, settings.redis_prefix, maxlen=settings.events_maxlen),
            models=ModelManager(settings),
            leases=LeaseStore(pool, graph),
            graph=graph,
        )
        if reaper:
            from stages.recovery import Reaper

            state.reaper = Reaper(settings, pool, redis, state.store, state.bus, graph)
            state.reaper.start()
        return state

    async def close(self) -> None:
        if self.reaper is not None:
            await self.reaper.stop()
        await self.pool.close()
        await self.redis.aclose()


class ProgressPump:
    """Turns progress callbacks from a worker thread into throttled `stage.progress` events.

    The stage code runs in a thread and must not touch Redis: it calls the callback, which
    hands the value to the event loop; at most one event per `interval` seconds is sent
    (plus the last one), so a chatty model cannot flood the clients.
    """

    def __init__(self, bus: EventBus, job_id: str, stage: str, *, interval: float = 0.25) -> None:
        self.bus, self.job_id, self.stage, self.interval = bus, job_id, stage, interval
        self._loop = asyncio.get_running_loop()
        self._latest: tuple[str, float] | None = None
        self._sent: tuple[str, float] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = asyncio.Event()

    def callback(self) -> ProgressCallback:
        def progress(step: str, completed: float, total: float) -> None:
            fraction = 0.0 if total <= 0 else max(0.0, min(1.0, completed / total))
            self._loop.call_soon_threadsafe(self._update, step, fraction)

        return progress

    def _update(self, step: str, fraction: float) -> None:
        self._latest = (step, fraction)
        self._wake.set()

    async def __aenter__(self) -> ProgressPump:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True
        self._closed.set()
        self._wake.set()
        if self._task:
            await self._task

    async def _run(self) -> None:
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()
            # Throttle, but let the stage's end cut the pause short: no added latency.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), self.interval)
        await self._flush()

    async def _flush(self) -> None:
        latest = self._latest
        if latest is None or latest == self._sent:
            return
        self._sent = latest
        step, fraction = latest
        # Progress is best effort; the stage result is what matters.
        with contextlib.suppress(ConnectionError, OSError, aioredis.RedisError):
            await self.bus.publish(
                JobEvent(
                    type="stage.progress",
                    job_id=self.job_id,
                    stage=self.stage,
                    step=step,
                    progress=round(fraction, 4),
                )
            )


def monotonic() -> float:
    return time.monotonic()
