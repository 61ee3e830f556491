"""An enrollment from clips counts as a job for its key's `max_concurrent_jobs`: against a
real uvicorn gateway (tests/security/conftest.py) on a database, Redis prefix and store of
this module's own, with a stand-in worker for `scribe.enroll` that holds each enrollment
until the test lets it go, so what is "at the same time" is decided by the test, not by
timing. Its place is given back however the enrollment ends, and one a dead gateway left
behind stops counting at its expiry.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from taskiq.receiver import Receiver

from core.errors import StageFailed
from core.settings import Settings
from events.queue import make_broker
from storage.limits import EnrollmentSlots
from tests.databases import own_settings
from tests.integration.stored_jobs import EMBEDDING, MODEL, enrolled_speaker, wav_bytes
from tests.security.conftest import Gateway, guarded
from tests.tenants import Tenant

WAIT_S = 30.0


@pytest.fixture(scope="module")
def guarded_settings(
    settings: Settings, pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    data_dir = tmp_path_factory.mktemp("sec-enroll")
    with own_settings(settings, pg_admin_dsn, data_dir, "sec-enroll") as own:
        yield guarded(own, redis_prefix=own.redis_prefix)


@dataclass
class HeldWorker:
    """A stand-in worker: each enrollment it is given waits for `release`, then creates the
    row as the real task does (or refuses the clips, for a name starting with 'Refused')."""

    arrived: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    release: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture(scope="module")
async def worker(gateway: Gateway) -> AsyncIterator[HeldWorker]:
    settings, services = gateway.settings, gateway.services
    assert settings.redis_url
    broker = make_broker(settings, settings.redis_url)
    broker.is_worker_process = True
    held = HeldWorker()

    @broker.task(task_name="scribe.enroll")
    async def enroll(
        speaker_id: str,
        name: str,
        clip_keys: list[str],
        governance: dict[str, object],
        max_duration_s: float | None,
    ) -> dict[str, object]:
        await held.arrived.put(speaker_id)
        await held.release.wait()
        if name.startswith("Refused"):
            raise StageFailed("enroll", "clip 1: no speech in it")
        return await enrolled_speaker(
            services, speaker_id, name, clip_keys, governance, model=MODEL, embedding=EMBEDDING
        )

    await broker.startup()
    stop = asyncio.Event()
    listening = asyncio.create_task(Receiver(broker, run_startup=False).listen(stop))
    yield held
    held.release.set()
    stop.set()
    await asyncio.wait_for(listening, 10)
    await broker.shutdown()


async def post_enrollment(http: httpx.AsyncClient, name: str) -> httpx.Response:
    clip = ("files", ("clip.wav", wav_bytes(0.5), "audio/wav"))
    return await http.post("/v1/speakers", data={"name": name}, files=[clip])


async def post_job(http: httpx.AsyncClient) -> httpx.Response:
    upload = ("file", ("meeting.wav", wav_bytes(0.5), "audio/wav"))
    return await http.post("/v1/jobs", files=[upload])


async def answered(posts: list[asyncio.Task[httpx.Response]], count: int) -> list[httpx.Response]:
    """The answers, once `count` of the requests have one (WAIT_S at most)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while sum(t.done() for t in posts) < count:
        assert loop.time() < deadline, f"{sum(t.done() for t in posts)} answered in {WAIT_S} s"
        await asyncio.sleep(0.05)
    return [t.result() for t in posts if t.done()]


def too_many_jobs(resp: httpx.Response) -> bool:
    if resp.status_code != 429:
        return False
    error = resp.json()["error"]
    return bool(error["code"] == "too_many_jobs" and "1 unfinished job" in error["message"])


async def slots_held(gateway: Gateway, tenant: Tenant) -> int:
    async with gateway.services.pool.acquire() as conn:
        count = await conn.fetchval(
            "SELECT count(*) FROM enrollment_slots WHERE owner = $1", uuid.UUID(tenant.id)
        )
    return int(count)


async def test_five_enrollments_at_once_with_a_limit_of_one_take_one_place(
    gateway: Gateway, worker: HeldWorker
) -> None:
    tenant = await gateway.tenant(max_concurrent_jobs=1)
    worker.release.clear()
    async with gateway.client(tenant) as http:
        posts = [asyncio.create_task(post_enrollment(http, f"Person {i}")) for i in range(5)]
        held_id = await asyncio.wait_for(worker.arrived.get(), WAIT_S)
        # The four others are answered while the first is still on the worker.
        refused = await answered(posts, 4)
        pending = [t for t in posts if not t.done()]
        assert len(pending) == 1
        assert all(too_many_jobs(r) for r in refused), [r.text for r in refused]
        assert worker.arrived.empty()  # none of them reached a worker
        assert await slots_held(gateway, tenant) == 1
        # The enrollment in progress is a job as far as the key's limit goes.
        assert too_many_jobs(await post_job(http))

        worker.release.set()
        (accepted,) = pending
        resp = await asyncio.wait_for(accepted, WAIT_S)
        assert resp.status_code == 201, resp.text
        assert resp.json()["id"] == held_id
        assert await slots_held(gateway, tenant) == 0

        # Its place given back, the next enrollment is accepted.
        again = await post_enrollment(http, "Person 5")
        assert again.status_code == 201, again.text
        await asyncio.wait_for(worker.arrived.get(), WAIT_S)
        listed = (await http.get("/v1/speakers")).json()
        assert sorted(s["id"] for s in listed) == sorted([held_id, again.json()["id"]])
    assert await slots_held(gateway, tenant) == 0


async def test_a_refused_enrollment_gives_its_place_back(
    gateway: Gateway, worker: HeldWorker
) -> None:
    tenant = await gateway.tenant(max_concurrent_jobs=1)
    worker.release.set()
    async with gateway.client(tenant) as http:
        refused = await post_enrollment(http, "Refused Rita")
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["message"] == "clip 1: no speech in it"
        assert await slots_held(gateway, tenant) == 0
        accepted = await post_enrollment(http, "Accepted Ana")
        assert accepted.status_code == 201, accepted.text
    while not worker.arrived.empty():
        worker.arrived.get_nowait()


async def test_a_place_left_by_a_dead_gateway_stops_counting_at_its_expiry(
    gateway: Gateway, worker: HeldWorker
) -> None:
    tenant = await gateway.tenant(max_concurrent_jobs=1)
    worker.release.set()
    # What a gateway that died in the middle of an enrollment leaves: a place never given back.
    await EnrollmentSlots(gateway.services.pool).claim(tenant.id, 1, ttl_s=600)
    async with gateway.client(tenant) as http:
        assert too_many_jobs(await post_enrollment(http, "Too Soon"))
        assert too_many_jobs(await post_job(http))
        assert worker.arrived.empty()
        async with gateway.services.pool.acquire() as conn:
            await conn.execute(
                "UPDATE enrollment_slots SET expires_at = now() - interval '1 second'"
                " WHERE owner = $1",
                uuid.UUID(tenant.id),
            )
        resp = await post_enrollment(http, "In Time")
        assert resp.status_code == 201, resp.text
    assert await slots_held(gateway, tenant) == 0  # the stale row went with the next claim
    while not worker.arrived.empty():
        worker.arrived.get_nowait()
