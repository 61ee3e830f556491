"""The stage broker's listener outlives its queue vanishing, against the real Redis: the
stream deleted while the listener waits in XREADGROUP (Redis 7 ends that wait with
UNBLOCKED, not NOGROUP), then a message sent to the re-created stream is still read by
the same listener. taskiq-redis's own listener ends there, and the worker process with it."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from core.settings import Settings
from events.queue import StageBroker, make_broker, queue_key


async def test_the_listener_reads_on_after_the_stream_is_deleted_under_it(
    settings: Settings,
) -> None:
    own = settings.model_copy(update={"redis_prefix": f"{settings.redis_prefix}-qloss"})
    assert own.redis_url
    broker = make_broker(own, own.redis_url)
    assert isinstance(broker, StageBroker)
    redis = aioredis.Redis.from_url(own.redis_url)
    await broker.startup()
    try:
        messages = broker.listen()
        first = asyncio.ensure_future(anext(messages))
        await asyncio.sleep(0.5)  # the listener now waits in XREADGROUP (1 s blocks)
        assert not first.done()
        assert await redis.delete(queue_key(own)) == 1  # the stream, and its group with it
        await asyncio.sleep(0.5)
        assert not first.done(), first  # the listener did not end
        await redis.xadd(queue_key(own), {"data": b"after the loss"})
        message = await asyncio.wait_for(first, timeout=10)
        assert message.data == b"after the loss"
        await messages.aclose()
    finally:
        await broker.shutdown()
        keys = [k async for k in redis.scan_iter(f"{own.redis_prefix}*")]
        keys += [k async for k in redis.scan_iter(f"autoclaim:{own.redis_prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
