"""A deleted job's passages leave the search index whatever the index's bookkeeping says:
against a real uvicorn gateway (tests/security/conftest.py) with a database, store and
Qdrant (local mode) of this module's own, and the real e5-small embedder. Passages the
`search_index` table knows nothing of (an upsert that failed half-way, one that is still
running) are removed by job id when the job is deleted over HTTP or by retention.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from core.settings import Settings
from gateway.app import sweep_once
from gateway.services.search_sync import sync_once
from search import index as search_index
from search.index import IndexedJob
from tests.databases import own_settings
from tests.security.conftest import Gateway, guarded
from tests.security.meetings import embedded_meeting, index_directly
from tests.tenants import Tenant

WAIT_S = 60.0


@pytest.fixture(scope="module")
def guarded_settings(
    settings: Settings, pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    data_dir = tmp_path_factory.mktemp("sec-search")
    with own_settings(settings, pg_admin_dsn, data_dir, "sec-search") as own:
        yield guarded(own, redis_prefix=own.redis_prefix)


async def found_jobs(gw: Gateway, tenant: Tenant, query: str) -> set[str]:
    async with gw.client(tenant) as http:
        resp = await http.get("/v1/search", params={"q": query, "limit": 50})
    assert resp.status_code == 200, resp.text
    return {h["job_id"] for h in resp.json()["hits"]}


async def delete(gw: Gateway, tenant: Tenant, job_id: str) -> None:
    async with gw.client(tenant) as http:
        resp = await http.delete(f"/v1/jobs/{job_id}")
    assert resp.status_code == 204, resp.text


def points_of(gw: Gateway, job_id: str) -> int:
    return gw.services.search.index().count(job_id=job_id)


async def test_passages_the_sync_table_never_recorded_go_with_the_job(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    meeting = await embedded_meeting(
        gateway.services, tenant, ["The vendor contract renewal is due in March."]
    )
    assert await index_directly(gateway.services, meeting, tenant) == 1
    assert await gateway.services.search_table.entry(meeting.job_id) == (False, None)
    assert meeting.job_id in await found_jobs(gateway, tenant, "vendor contract renewal")

    await delete(gateway, tenant, meeting.job_id)
    assert points_of(gateway, meeting.job_id) == 0
    assert meeting.job_id not in await found_jobs(gateway, tenant, "vendor contract renewal")


async def test_a_half_failed_upsert_leaves_nothing_once_the_job_is_deleted(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await gateway.tenant()
    lines = ["The warehouse lease ends in June.", "Budget for the warehouse move is open."]
    meeting = await embedded_meeting(gateway.services, tenant, lines)
    assert len(meeting.doc.passages) == 2
    # One point per upsert call, and the second call fails: the first point is written.
    monkeypatch.setattr(search_index, "UPSERT_BATCH", 1)
    client = gateway.services.search.index().client
    real_upsert = client.upsert
    calls = 0

    def failing_upsert(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise ConnectionError("qdrant went away mid-upsert")
        return real_upsert(*args, **kwargs)

    monkeypatch.setattr(client, "upsert", failing_upsert)
    assert await sync_once(gateway.services) == 0
    monkeypatch.undo()
    assert points_of(gateway, meeting.job_id) == 1
    _, indexed = await gateway.services.search_table.entry(meeting.job_id)
    assert indexed is None  # the table says nothing is indexed
    assert meeting.job_id in await found_jobs(gateway, tenant, "warehouse lease")

    await delete(gateway, tenant, meeting.job_id)
    assert points_of(gateway, meeting.job_id) == 0
    assert meeting.job_id not in await found_jobs(gateway, tenant, "warehouse lease")


async def test_an_upsert_in_flight_while_the_job_is_deleted_is_undone(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    meeting = await embedded_meeting(
        gateway.services, tenant, ["The hiring freeze lifts next quarter."]
    )
    index = gateway.services.search.index()
    real_upsert_job = index.upsert_job
    entered, go_on = threading.Event(), threading.Event()

    def held_upsert_job(job: IndexedJob, *args: Any, **kwargs: Any) -> int:
        if job.job_id == meeting.job_id:
            entered.set()  # the sync pass read the job before it was deleted
            assert go_on.wait(WAIT_S)
        return real_upsert_job(job, *args, **kwargs)

    index.upsert_job = held_upsert_job  # type: ignore[method-assign]
    try:
        syncing = asyncio.create_task(sync_once(gateway.services))
        assert await asyncio.to_thread(entered.wait, WAIT_S)
        await delete(gateway, tenant, meeting.job_id)  # nothing in the index yet
        go_on.set()
        await asyncio.wait_for(syncing, WAIT_S)
    finally:
        go_on.set()
        del index.upsert_job
    assert points_of(gateway, meeting.job_id) == 1  # written after the delete

    await sync_once(gateway.services)  # the gateway's sync loop, its next pass
    assert points_of(gateway, meeting.job_id) == 0
    assert await gateway.services.search_table.entry(meeting.job_id) == (False, None)
    assert meeting.job_id not in await found_jobs(gateway, tenant, "hiring freeze")


async def test_retention_removes_passages_the_sync_table_never_recorded(
    gateway: Gateway,
) -> None:
    tenant = await gateway.tenant()
    meeting = await embedded_meeting(
        gateway.services, tenant, ["An old meeting about the parking permits."]
    )
    await index_directly(gateway.services, meeting, tenant)
    assert meeting.job_id in await found_jobs(gateway, tenant, "parking permits")
    async with gateway.services.pool.acquire() as conn:
        await conn.execute(
            "UPDATE jobs SET created_at = now() - interval '40 days' WHERE id = $1",
            uuid.UUID(meeting.job_id),
        )
    assert meeting.job_id in await sweep_once(gateway.services, 30)
    assert points_of(gateway, meeting.job_id) == 0
    assert meeting.job_id not in await found_jobs(gateway, tenant, "parking permits")
