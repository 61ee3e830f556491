"""`Services`: what the gateway talks to: PostgreSQL, the artifact store, Redis events and
the queue, and the search index. Opened once per process (`Services.connect`); every
service function takes it as its first argument."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis
from taskiq import AsyncBroker

from core.graph import StageGraph, load_graph
from core.settings import Settings
from events.bus import EventBus
from events.live import LiveRoom, make_live_broker
from events.queue import make_broker
from llm.load import LazyLanguageModel
from search.engine import SearchEngine
from storage.artifact_records import ArtifactRecordStore
from storage.artifacts import ArtifactStore
from storage.auth import AuthStore
from storage.calibration import CalibrationStore
from storage.corrections import CorrectionStore
from storage.db import create_pool, migrate
from storage.jobs import JobStore
from storage.leases import LeaseStore
from storage.limits import EnrollmentSlots
from storage.search_index import SearchIndexStore
from storage.speakers import SpeakerStore


@dataclass
class Services:
    settings: Settings
    pool: asyncpg.Pool
    jobs: JobStore
    records: ArtifactRecordStore
    speakers: SpeakerStore
    corrections: CorrectionStore
    calibration: CalibrationStore
    store: ArtifactStore
    bus: EventBus
    redis: aioredis.Redis
    broker: AsyncBroker
    auth: AuthStore
    graph: StageGraph  # the stages a job runs
    leases: LeaseStore  # the stages' leases, by the same graph: replays requeue through it
    enrollment_slots: EnrollmentSlots  # enrollments in progress count as unfinished jobs
    # Signs stream tokens: settings.auth_secret, else the one kept in the database.
    secret: str
    # The search index (owned by the gateway) and what it holds of each job.
    search: SearchEngine
    search_table: SearchIndexStore
    # Live meetings: their own queue (events/live.py) and the live workers' room.
    live_broker: AsyncBroker
    live_room: LiveRoom
    # The language model that answers /v1/ask, loaded on the first question.
    language: LazyLanguageModel

    @classmethod
    async def connect(cls, settings: Settings) -> Services:
        """Open everything. The entry point resolves embedded servers into URLs first."""
        if not settings.database_url or not settings.redis_url:
            raise RuntimeError("the gateway needs settings.database_url and settings.redis_url")
        pool = await create_pool(settings.database_url)
        redis: aioredis.Redis | None = None
        try:
            await migrate(pool)
            auth = AuthStore(pool)
            secret = settings.auth_secret or await auth.server_secret()
            redis = aioredis.Redis.from_url(settings.redis_url)
            broker = make_broker(settings, settings.redis_url)
            await broker.startup()
            live_broker = make_live_broker(settings, settings.redis_url)
            await live_broker.startup()
        except BaseException:
            if redis is not None:
                await redis.aclose()
            await pool.close()
            raise
        graph = load_graph(settings.stage_graph)
        return cls(
            settings=settings,
            pool=pool,
            jobs=JobStore(pool, graph),
            records=ArtifactRecordStore(pool),
            speakers=SpeakerStore(pool),
            corrections=CorrectionStore(pool),
            calibration=CalibrationStore(pool),
            store=ArtifactStore.from_settings(settings),
            bus=EventBus(redis, settings.redis_prefix, maxlen=settings.events_maxlen),
            redis=redis,
            broker=broker,
            auth=auth,
            graph=graph,
            leases=LeaseStore(pool, graph),
            enrollment_slots=EnrollmentSlots(pool),
            secret=secret,
            search=SearchEngine(settings),
            search_table=SearchIndexStore(pool),
            live_broker=live_broker,
            live_room=LiveRoom(redis, settings.redis_prefix),
            language=LazyLanguageModel(settings),
        )

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.search.close()
        with contextlib.suppress(Exception):
            self.language.close()
        with contextlib.suppress(Exception):
            await self.bus.aclose()
        with contextlib.suppress(Exception):
            await self.broker.shutdown()
        with contextlib.suppress(Exception):
            await self.live_broker.shutdown()
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        await self.pool.close()
