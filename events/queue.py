"""The stage task queue: a Taskiq broker on a Redis Stream, chained with taskiq-pipelines.

The gateway builds pipelines from task *names* only, so it never imports the stage code
(and with it torch). The worker registers the tasks under the same names.
"""

from __future__ import annotations

from typing import Any

from taskiq import AsyncBroker
from taskiq.kicker import AsyncKicker
from taskiq_pipelines import Pipeline, PipelineMiddleware
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

from core.artifacts import STAGES
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
    return broker.with_result_backend(result_backend).with_middlewares(PipelineMiddleware())


def stages_from(stage: str) -> list[str]:
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    return list(STAGES[STAGES.index(stage) :])


def build_pipeline(broker: AsyncBroker, first_stage: str = "decode") -> Pipeline[Any, Any]:
    """decode → diarize → transcribe → identify → merge, or the tail from `first_stage`.

    Each stage task takes the job id and returns it, so the next step receives it.
    """
    names = stages_from(first_stage)
    kickers: list[AsyncKicker[Any, Any]] = [
        AsyncKicker(task_name(s), broker, labels={}) for s in names
    ]
    pipe: Pipeline[Any, Any] = Pipeline(broker, kickers[0])
    for k in kickers[1:]:
        pipe = pipe.call_next(k)
    return pipe
