"""The search API on jobs built in the stores (tests/integration/stored_jobs.py): embed
artifacts made with the real e5-small engine the way the embed stage makes them, indexed by
the gateway's own sync pass into Qdrant's local mode, against real PostgreSQL and Redis.

Tenants never see each other's passages; bad queries get a 422 a person can read;
deleting a job, the retention sweep and a job removed behind the gateway's back all take
its passages out; reindex sends the embed stage of the caller's jobs. Last, a real worker
whose embed stage cannot load its model reports that on the stage, and the job stays
succeeded.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from cli.local import LocalSystem
from core.artifacts import MeetingResult, ResultSegment, ResultSpeaker, SearchPassages
from core.settings import SearchSettings, Settings
from gateway.app import sweep_once
from gateway.services import Services
from gateway.services.search_sync import sync_once
from search.embedder import E5SmallEmbedder, vectors_to_bytes
from search.passages import cut_passages
from storage.artifacts import artifact_dir
from tests.databases import own_settings
from tests.integration.stored_jobs import finished_job, record_artifact
from tests.tenants import Tenant, new_tenant


@pytest.fixture(scope="module")
def e5() -> E5SmallEmbedder:
    return E5SmallEmbedder()


async def meeting_of(
    services: Services, e5: E5SmallEmbedder, tenant: Tenant | None, lines: list[str]
) -> str:
    """A succeeded job of `tenant` whose embed artifact holds `lines` (one speaker turn
    each, S1 and S2 in turn), indexed by one sync pass."""
    job = await finished_job(services)
    if tenant is not None:
        async with services.pool.acquire() as conn:
            await conn.execute(
                "UPDATE jobs SET owner = $2 WHERE id = $1",
                uuid.UUID(job.id),
                uuid.UUID(tenant.id),
            )
    speakers = [ResultSpeaker(id="S1", name="Ada", talk_time_s=1.0)]
    speakers.append(ResultSpeaker(id="S2", talk_time_s=1.0))
    segments = [
        ResultSegment(start=10.0 * i, end=10.0 * i + 8, speaker=f"S{i % 2 + 1}", text=t, words=[])
        for i, t in enumerate(lines)
    ]
    result = MeetingResult(
        job_id=job.id, duration_s=10.0 * len(lines), language="en", speakers=speakers,
        segments=segments,
    )  # fmt: skip
    passages = cut_passages(result)
    vectors = e5.embed_passages([p.text for p in passages])
    key = uuid.uuid4().hex
    stored = services.store.put_bytes(
        f"{artifact_dir(job.id, 'embed', key)}/vectors.npy", vectors_to_bytes(vectors)
    )
    doc = SearchPassages(
        job_id=job.id,
        model=e5.model_id,
        dim=e5.dim,
        vectors_uri=stored.uri,
        vectors_sha256=stored.sha256,
        passages=passages,
    )
    await record_artifact(services, job.id, "embed", key, doc, model=e5.model_id)
    assert await sync_once(services) >= 1
    return job.id


@pytest.fixture(scope="module")
async def alice(services: Services) -> Tenant:
    return await new_tenant(services.auth)


@pytest.fixture(scope="module")
async def bob(services: Services) -> Tenant:
    return await new_tenant(services.auth)


async def search(
    client: httpx.AsyncClient, tenant: Tenant, **params: str | int | float
) -> dict[str, object]:
    resp = await client.get("/v1/search", params=params, headers=tenant.headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, object] = resp.json()
    return body


def job_ids(body: dict[str, object]) -> set[str]:
    hits = body["hits"]
    assert isinstance(hits, list)
    return {h["job_id"] for h in hits}


async def test_a_tenant_never_sees_another_tenants_passages(
    client: httpx.AsyncClient, services: Services, e5: E5SmallEmbedder, alice: Tenant, bob: Tenant
) -> None:
    mine = await meeting_of(
        services, e5, alice, ["Ada owns the release of the mobile app.", "Fine."]
    )
    theirs = await meeting_of(
        services, e5, bob, ["Le budget du pilote est de dix mille euros.", "Ok."]
    )
    found = await search(client, alice, q="who owns the release", limit=50)
    assert job_ids(found) == {mine}
    hits = found["hits"]
    assert isinstance(hits, list) and hits[0]["speaker"] == "Ada" and hits[0]["start"] == 0.0
    assert job_ids(await search(client, alice, q="le budget du pilote", limit=50)) == {mine}
    assert job_ids(await search(client, bob, q="le budget du pilote", limit=50)) == {theirs}
    # Naming the other tenant's job does not open it.
    assert job_ids(await search(client, alice, q="budget", job_id=theirs)) == set()
    anonymous = await client.get("/v1/search", params={"q": "budget"})
    assert anonymous.status_code == 401


async def test_bad_queries_get_a_422_that_says_why(
    client: httpx.AsyncClient, alice: Tenant
) -> None:
    cases = {
        (): "empty",
        (("q", "   "),): "empty",
        (("q", "x" * 501),): "500",
        (("q", "budget"), ("limit", "0")): "limit",
        (("q", "budget"), ("limit", "51")): "limit",
        (("q", "budget"), ("after", "last tuesday")): "date",
    }
    for params, says in cases.items():
        resp = await client.get("/v1/search", params=dict(params), headers=alice.headers)
        assert resp.status_code == 422, (params, resp.text)
        error = resp.json()["error"]
        assert error["code"] == "invalid_request" and says in error["message"], (params, error)


async def test_deleting_a_job_and_retention_take_its_passages_out(
    client: httpx.AsyncClient, services: Services, e5: E5SmallEmbedder, alice: Tenant
) -> None:
    index = services.search.index()
    doomed = await meeting_of(services, e5, alice, ["The quarterly roadmap review is on Monday."])
    assert index.count(job_id=doomed) == 1
    resp = await client.delete(f"/v1/jobs/{doomed}", headers=alice.headers)
    assert resp.status_code == 204
    assert index.count(job_id=doomed) == 0
    # Its row stays until the next sync pass, which removes whatever an upsert in flight
    # wrote meanwhile, then the row.
    await sync_once(services)
    assert await services.search_table.entry(doomed) == (False, None)

    old = await meeting_of(services, e5, alice, ["An old meeting about the office move."])
    async with services.pool.acquire() as conn:
        await conn.execute(
            "UPDATE jobs SET created_at = now() - interval '40 days' WHERE id = $1", uuid.UUID(old)
        )
    assert old in await sweep_once(services, 30)
    assert index.count(job_id=old) == 0

    # A job removed behind the gateway's back: the next sync pass removes its passages.
    behind = await meeting_of(services, e5, alice, ["Nobody told the gateway about this one."])
    async with services.pool.acquire() as conn:
        await conn.execute("DELETE FROM jobs WHERE id = $1", uuid.UUID(behind))
    await sync_once(services)
    assert index.count(job_id=behind) == 0
    assert await services.search_table.entry(behind) == (False, None)


async def test_reindex_sends_the_callers_jobs_only(
    client: httpx.AsyncClient, services: Services, e5: E5SmallEmbedder, bob: Tenant
) -> None:
    carol = await new_tenant(services.auth)
    one = await meeting_of(services, e5, carol, ["Carol's first meeting."])
    two = await meeting_of(services, e5, carol, ["Carol's second meeting."])
    resp = await client.post("/v1/search/reindex", headers=carol.headers)
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"jobs": 2, "job_ids": [one, two]}
    for job_id in (one, two):
        job = (await client.get(f"/v1/jobs/{job_id}", headers=carol.headers)).json()
        embed = next(s for s in job["stages"] if s["stage"] == "embed")
        assert job["status"] == "succeeded" and embed["status"] == "queued"
    # Sent again while still queued: marked, and sent by the sync loop once it is free.
    again = await client.post("/v1/search/reindex", headers=carol.headers)
    assert again.json()["jobs"] == 2
    async with services.pool.acquire() as conn:
        marked = await conn.fetchval(
            "SELECT count(*) FROM search_index WHERE resend AND job_id = ANY($1::uuid[])",
            [uuid.UUID(one), uuid.UUID(two)],
        )
    assert marked == 2
    assert job_ids(await search(client, bob, q="Carol's meeting", limit=50)).isdisjoint({one, two})


# ---------------------------------------------------------------- a failing embed stage


@pytest.fixture(scope="module")
def broken_embedder_system(
    settings: Settings, pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalSystem]:
    """A gateway and worker told to embed with BGE-M3 but given no model directory."""
    data_dir = tmp_path_factory.mktemp("scribe-search-broken")
    broken = SearchSettings(embedder="bge-m3")
    with own_settings(settings, pg_admin_dsn, data_dir, "search-broken", search=broken) as own:
        system = LocalSystem(own, worker_log=data_dir / "worker.log")
        system.start()
        try:
            yield system
        finally:
            system.stop()


@pytest.mark.slow
def test_a_failed_embed_stage_is_reported_and_the_job_stays_succeeded(
    broken_embedder_system: LocalSystem,
) -> None:
    settings = broken_embedder_system.settings

    async def stored_job() -> str:
        """A succeeded job as made before search existed: no embed stage row."""
        svc = await Services.connect(settings)
        try:
            job_id = (await finished_job(svc)).id
            async with svc.pool.acquire() as conn:
                await conn.execute(
                    "DELETE FROM job_stages WHERE job_id = $1 AND stage = 'embed'",
                    uuid.UUID(job_id),
                )
            return job_id
        finally:
            await svc.close()

    job_id = asyncio.run(stored_job())
    with httpx.Client(base_url=broken_embedder_system.url, timeout=30) as http:
        assert http.post("/v1/search/reindex").json()["job_ids"] == [job_id]
        deadline = time.monotonic() + 120
        while True:
            job = http.get(f"/v1/jobs/{job_id}").json()
            embed = next(s for s in job["stages"] if s["stage"] == "embed")
            if embed["status"] == "failed":
                break
            assert time.monotonic() < deadline, job
            time.sleep(0.3)
        assert job["status"] == "succeeded" and job["error"] is None
        assert "SCRIBE_SEARCH__EMBEDDER_DIR" in embed["error"], embed
        assert http.get(f"/v1/jobs/{job_id}/result").status_code == 200
        # The gateway's query embedder is the same broken one: a clear error, not a hang.
        resp = http.get("/v1/search", params={"q": "hello"})
        assert resp.status_code >= 400 and "SCRIBE_SEARCH__EMBEDDER_DIR" in resp.text
