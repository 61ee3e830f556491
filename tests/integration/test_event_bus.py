"""EventBus on a real Redis: history then live with no gap and no duplicate, one Pub/Sub
connection for any number of followers, and nothing lost when that connection drops."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from core.events import JobEvent
from events.bus import EventBus

FOLLOW_TIMEOUT_S = 20.0


@pytest.fixture
async def bus(redis_url: str) -> AsyncIterator[EventBus]:
    r = aioredis.Redis.from_url(redis_url)
    bus = EventBus(r, f"test-bus-{uuid.uuid4().hex[:8]}")
    try:
        yield bus
    finally:
        await bus.aclose()
        keys = [k async for k in r.scan_iter(f"{bus.prefix}:*")]
        if keys:
            await r.delete(*keys)
        await r.aclose()


def progress(job_id: str, n: int) -> JobEvent:
    return JobEvent(type="stage.progress", job_id=job_id, stage="diarize", progress=n / 100)


async def collect(bus: EventBus, job_id: str, after: str | None = None) -> list[JobEvent]:
    async def go() -> list[JobEvent]:
        return [e async for e in bus.follow(job_id, after)]

    return await asyncio.wait_for(go(), FOLLOW_TIMEOUT_S)


async def publish_all(bus: EventBus, job_id: str, count: int, pause_s: float = 0.0) -> list[str]:
    ids = []
    for n in range(count):
        ids.append((await bus.publish(progress(job_id, n))).id or "")
        if pause_s:
            await asyncio.sleep(pause_s)
    ids.append((await bus.publish(JobEvent(type="job.succeeded", job_id=job_id))).id or "")
    return ids


async def pubsub_client_ids(bus: EventBus) -> set[str]:
    listing = await bus.redis.execute_command(  # type: ignore[no-untyped-call]
        "CLIENT", "LIST", "TYPE", "pubsub"
    )
    text = listing.decode() if isinstance(listing, bytes) else str(listing)
    return {
        f.split("=", 1)[1]
        for line in text.splitlines()
        for f in line.split()
        if f.startswith("id=")
    }


async def test_follow_joins_history_and_live_without_gap_or_duplicate(bus: EventBus) -> None:
    job_id = uuid.uuid4().hex
    early = [(await bus.publish(progress(job_id, n))).id for n in range(5)]
    follower = asyncio.create_task(collect(bus, job_id))
    later = await publish_all(bus, job_id, 20, pause_s=0.002)
    got = [e.id for e in await follower]
    assert got == early + later


async def test_follow_resumes_after_a_given_event(bus: EventBus) -> None:
    job_id = uuid.uuid4().hex
    ids = await publish_all(bus, job_id, 10)
    got = await collect(bus, job_id, after=ids[3])
    assert [e.id for e in got] == ids[4:]
    assert got[-1].type == "job.succeeded"


async def test_many_followers_share_one_subscription(bus: EventBus) -> None:
    jobs = [uuid.uuid4().hex for _ in range(3)]
    before = await pubsub_client_ids(bus)
    followers = [asyncio.create_task(collect(bus, j)) for j in jobs for _ in range(20)]
    await bus.live.ready()
    # Every follower has registered before anything is published.
    for _ in range(100):
        if bus.live.followers == len(followers):
            break
        await asyncio.sleep(0.01)
    assert bus.live.followers == len(followers)
    # One Pub/Sub connection for all 60 (Redis is shared: count only the ones opened here).
    assert len(await pubsub_client_ids(bus) - before) == 1
    numsub = await bus.redis.pubsub_numsub(*(bus.channel(j) for j in jobs))
    assert [count for _, count in numsub] == [0, 0, 0]  # no per-job channel subscription
    published = {j: await publish_all(bus, j, 30) for j in jobs}
    results = await asyncio.gather(*followers)
    for i, events in enumerate(results):
        assert [e.id for e in events] == published[jobs[i // 20]]
    assert bus.live.followers == 0  # each follower let go of its queue


async def test_nothing_is_lost_when_the_subscription_connection_drops(bus: EventBus) -> None:
    job_id = uuid.uuid4().hex
    before = await pubsub_client_ids(bus)
    follower = asyncio.create_task(collect(bus, job_id))
    ids = [(await bus.publish(progress(job_id, n))).id for n in range(5)]
    while bus.live.followers == 0:
        await asyncio.sleep(0.01)
    (ours,) = await pubsub_client_ids(bus) - before
    # Drop the fan-out's connection, and publish while it reconnects.
    assert await bus.redis.execute_command("CLIENT", "KILL", "ID", ours) == 1  # type: ignore[no-untyped-call]
    ids += [(await bus.publish(progress(job_id, n))).id for n in range(5, 15)]
    await asyncio.sleep(0.05)
    await bus.live.ready()
    assert ours not in await pubsub_client_ids(bus)
    ids += await publish_all(bus, job_id, 0)
    got = [e.id for e in await follower]
    assert got == ids


async def test_idle_timeout_ends_a_quiet_follow(bus: EventBus) -> None:
    job_id = uuid.uuid4().hex
    first = await bus.publish(progress(job_id, 1))
    got = [e async for e in bus.follow(job_id, idle_timeout=0.3)]
    assert [e.id for e in got] == [first.id]
