"""The stage task queue: a Taskiq broker on a Redis Stream, one message per stage to run.

Stages are sent by task *name* only, so the gateway never imports the stage code (and
with it torch); the worker registers the tasks under the same names. What runs after a
stage is decided by the graph (core/graph.py) and the database (storage/leases.py), not by
the message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from taskiq import AckableMessage, AsyncBroker
from taskiq.kicker import AsyncKicker
from taskiq.serializers import JSONSerializer
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

from core.settings import Settings

log = logging.getLogger("scribe.queue")


def task_name(stage: str) -> str:
    return f"scribe.stage.{stage}"


def queue_key(settings: Settings) -> str:
    """The Redis Stream that holds the stage messages."""
    return f"{settings.redis_prefix}:queue"


def group_name(settings: Settings) -> str:
    """The consumer group every worker reads the queue in."""
    return f"{settings.redis_prefix}:workers"


GONE = ("NOGROUP", "UNBLOCKED")  # what Redis answers a reader whose queue vanished


class StageBroker(RedisStreamBroker):
    """taskiq-redis's stream broker, made to outlive a Redis that lost its data.

    The consumer group is created reading from the start of the stream ("0"), not from its
    end: a stream that a gateway's XADD re-created after the data was lost (Redis restarted
    empty) holds only messages nobody read. And when the stream or the group is gone while
    the worker runs (XREADGROUP answers NOGROUP, or UNBLOCKED when it was waiting), the
    group is created again and reading goes on; taskiq-redis would end the worker's
    listener instead. The messages that were lost
    with the data are sent again from PostgreSQL by the reaper (stages/recovery.py).
    """

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        while True:
            try:
                async for message in super().listen():
                    yield message
            except ResponseError as exc:
                # NOGROUP: the stream or its group is gone. UNBLOCKED: the stream was
                # deleted while XREADGROUP waited on it (Redis 7 ends the wait with this).
                if not any(code in str(exc) for code in GONE):
                    raise
                log.warning("the queue's consumer group is gone (Redis lost its data?); "
                            "creating it again")  # fmt: skip
                await self._declare_consumer_group()
                await asyncio.sleep(0.2)  # never a busy loop, should Redis go on refusing


def make_broker(
    settings: Settings, redis_url: str, *, queue: str | None = None, group: str | None = None
) -> AsyncBroker:
    """The one broker every process of Scribe sends and receives tasks with.

    What it writes to Redis is JSON, never a pickle: taskiq-redis's result backend pickles
    by default, and reading a pickle runs whatever it says, so anyone who can write to Redis
    could run code in the gateway that waits for an answer. Messages and results are plain
    data (ids, a speaker as JSON); an error travels as its type and arguments, which taskiq
    rebuilds only into an exception class. `queue` and `group`: another stream and consumer
    group than the stages' (the live meetings' queue, events/live.py)."""
    prefix = settings.redis_prefix
    result_backend: RedisAsyncResultBackend[Any] = RedisAsyncResultBackend(
        redis_url,
        prefix_str=f"{prefix}:results",
        result_ex_time=24 * 3600,
        serializer=JSONSerializer(),
        socket_timeout=None,
    )
    broker = StageBroker(
        redis_url,
        queue_name=queue or queue_key(settings),
        consumer_group_name=group or group_name(settings),
        consumer_id="0",
        # One message at a time: nothing is prefetched that a recycled or killed worker
        # could strand; the unacked message is redelivered after idle_timeout.
        xread_count=1,
        xread_block=1000,
        idle_timeout=settings.broker_idle_timeout_s * 1000,
        # Reclaim abandoned messages one at a time too: a batch claimed by a child that is
        # then recycled would wait out another idle timeout.
        unacknowledged_batch_size=1,
        unacknowledged_lock_timeout=30,
        # redis-py's 5 s default breaks blocking reads on an idle queue
        # (docs/development.md, pitfalls).
        socket_timeout=None,
    )
    return broker.with_serializer(JSONSerializer()).with_result_backend(result_backend)


async def send_stages(broker: AsyncBroker, job_id: str, stages: tuple[str, ...]) -> None:
    """Queue one message per stage; each stage task takes the job id."""
    for stage in stages:
        kicker: AsyncKicker[Any, Any] = AsyncKicker(task_name(stage), broker, labels={})
        await kicker.kiq(job_id)


async def requeue_unacknowledged(redis: aioredis.Redis, settings: Settings) -> int:
    """Send again every message delivered to a consumer of the group and never acknowledged,
    and acknowledge the old copy. Only for a queue whose every consumer is known to be dead
    (the embedded one, at the start of the only process running workers on it): a worker
    reads its next message while a stage runs, and once it is killed, that message would wait
    for the broker's idle timeout. A message sent twice is harmless: a stage's lease lets
    one delivery run it. The number of messages sent again."""
    queue, group = queue_key(settings), group_name(settings)
    try:
        pending: Any = await redis.xpending_range(queue, group, min="-", max="+", count=10_000)
    except ResponseError:  # no stream or no group yet
        return 0
    sent = 0
    for entry in pending:
        message_id = entry["message_id"]
        entries: Any = await redis.xrange(queue, min=message_id, max=message_id)
        for _, fields in entries:
            await redis.xadd(queue, fields)
            sent += 1
        await redis.xack(queue, group, message_id)
    return sent
