"""The stage task queue: a Taskiq broker on a Redis Stream, one message per stage to run.

Stages are sent by task *name* only, so the gateway never imports the stage code (and
with it torch); the worker registers the tasks under the same names. What runs after a
stage is decided by the graph (core/graph.py) and the database (storage/leases.py), not by
the message.
"""

from __future__ import annotations

from typing import Any

from taskiq import AsyncBroker
from taskiq.kicker import AsyncKicker
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

from core.settings import Settings


def task_name(stage: str) -> str:
    return f"scribe.stage.{stage}"


def make_broker(settings: Settings, redis_url: str) -> AsyncBroker:
    prefix = settings.redis_prefix
    result_backend: RedisAsyncResultBackend[Any] = RedisAsyncResultBackend(
        redis_url,
        prefix_str=f"{prefix}:results",
        result_ex_time=24 * 3600,
        socket_timeout=None,
    )
    broker = RedisStreamBroker(
        redis_url,
        queue_name=f"{prefix}:queue",
        consumer_group_name=f"{prefix}:workers",
        # One message at a time: nothing is prefetched that a recycled or killed worker
        # could strand; the unacked message is redelivered after idle_timeout.
        xread_count=1,
        xread_block=1000,
        idle_timeout=settings.broker_idle_timeout_s * 1000,
        # Reclaim abandoned messages one at a time too: a batch claimed by a child that is
        # then recycled would wait out another idle timeout.
        unacknowledged_batch_size=1,
        unacknowledged_lock_timeout=30,
        # redis-py's 5 s default breaks blocking reads on an idle queue (STACK.md).
        socket_timeout=None,
    )
    return broker.with_result_backend(result_backend)


async def send_stages(broker: AsyncBroker, job_id: str, stages: tuple[str, ...]) -> None:
    """Queue one message per stage; each stage task takes the job id."""
    for stage in stages:
        kicker: AsyncKicker[Any, Any] = AsyncKicker(task_name(stage), broker, labels={})
        await kicker.kiq(job_id)
