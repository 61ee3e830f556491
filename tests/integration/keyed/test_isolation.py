"""API keys and isolation with auth on, against real PostgreSQL, Redis and a file:// store.

No worker runs here: jobs are created by uploading, or built the way the stages leave them
(tests/integration/stored_jobs.py) and handed to a tenant.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cli.client import ScribeClient
from core.artifacts import Identification, SpeakerMatch
from core.settings import Settings
from gateway.app import retention_sweeper, sweep_once
from gateway.auth import stream_token
from gateway.services import Services
from storage.artifacts import job_prefix
from storage.leases import LeaseGrant, LeaseStore
from tests.integration.stored_jobs import FinishedJob, finished_job, record_artifact, wav_bytes
from tests.tenants import Tenant
from tests.tenants import new_tenant as make_tenant


async def new_tenant(services: Services, **limits: int | float) -> Tenant:
    return await make_tenant(services.auth, **limits)


@pytest.fixture(scope="module")
async def alice(services: Services) -> Tenant:
    return await new_tenant(services)


@pytest.fixture(scope="module")
async def bob(services: Services) -> Tenant:
    return await new_tenant(services)


async def owned_job(services: Services, tenant: Tenant) -> FinishedJob:
    job = await finished_job(services)
    async with services.pool.acquire() as conn:
        await conn.execute(
            "UPDATE jobs SET owner = $2 WHERE id = $1", uuid.UUID(job.id), uuid.UUID(tenant.id)
        )
    return job


async def upload(
    client: httpx.AsyncClient, tenant: Tenant | None, data: bytes | None = None
) -> httpx.Response:
    files = {"file": ("meeting.wav", data or wav_bytes(), "audio/wav")}
    headers = tenant.headers if tenant else {}
    return await client.post("/v1/jobs", files=files, headers=headers)


def code(resp: httpx.Response) -> tuple[int, str]:
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return resp.status_code, body["error"]["code"]


# ---------------------------------------------------------------- keys


async def test_every_v1_route_needs_a_key(client: httpx.AsyncClient) -> None:
    some = str(uuid.uuid4())
    for method, path in [
        ("GET", "/v1/jobs"),
        ("POST", "/v1/jobs"),
        ("GET", f"/v1/jobs/{some}"),
        ("DELETE", f"/v1/jobs/{some}"),
        ("GET", f"/v1/jobs/{some}/events"),
        ("POST", f"/v1/jobs/{some}/events/token"),
        ("GET", f"/v1/jobs/{some}/result"),
        ("GET", f"/v1/jobs/{some}/artifacts"),
        ("GET", f"/v1/jobs/{some}/audio"),
        ("GET", f"/v1/jobs/{some}/speakers"),
        ("GET", f"/v1/jobs/{some}/corrections"),
        ("POST", f"/v1/jobs/{some}/stages/decode/replay"),
        ("GET", "/v1/speakers"),
        ("POST", "/v1/speakers"),
        ("DELETE", f"/v1/speakers/{some}"),
        ("GET", "/v1/metrics/accuracy"),
    ]:
        resp = await client.request(method, path)
        assert code(resp) == (401, "unauthorized"), (method, path)
    bad = await client.get("/v1/jobs", headers={"Authorization": "Bearer scr_not-a-key"})
    assert code(bad) == (401, "unauthorized")
    # The page, its files, health, the API description and the stage list stay open.
    open_paths = ["/", "/healthz", "/readyz", "/openapi.json", "/docs", "/v1/stages"]
    asset = re.search(r'/_next/static/[^"]+\.js', (await client.get("/")).text)
    if asset:  # the built page's scripts (scripts/web.sh builds it where Node.js is)
        open_paths.append(asset.group(0))
    for path in open_paths:
        assert (await client.get(path)).status_code == 200, path


async def test_bearer_or_x_api_key(client: httpx.AsyncClient, alice: Tenant) -> None:
    assert (await client.get("/v1/jobs", headers=alice.headers)).status_code == 200
    other = await client.get("/v1/jobs", headers={"X-API-Key": alice.token})
    assert other.status_code == 200


async def test_a_revoked_key_is_refused(client: httpx.AsyncClient, services: Services) -> None:
    tenant = await new_tenant(services)
    assert (await client.get("/v1/jobs", headers=tenant.headers)).status_code == 200
    await services.auth.revoke_key(tenant.key_id)
    assert code(await client.get("/v1/jobs", headers=tenant.headers)) == (401, "unauthorized")


async def test_keys_are_stored_hashed(services: Services, alice: Tenant) -> None:
    async with services.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM api_keys WHERE id = $1", uuid.UUID(alice.key_id))
    assert row is not None
    assert alice.token not in dict(row).values()
    assert row["prefix"] == alice.token[: len(row["prefix"])] and len(row["prefix"]) < 16


# ---------------------------------------------------------------- isolation


async def test_one_tenant_sees_nothing_of_another(
    client: httpx.AsyncClient, services: Services, alice: Tenant, bob: Tenant
) -> None:
    job = await owned_job(services, bob)
    uploaded = await upload(client, bob)
    assert uploaded.status_code == 202, uploaded.text
    mine = (await upload(client, alice)).json()["id"]

    # Bob sees his jobs; the job he did not upload is listed too (it is his by owner).
    for path in ("", "/result", "/artifacts", "/audio", "/speakers", "/corrections"):
        assert (
            await client.get(f"/v1/jobs/{job.id}{path}", headers=bob.headers)
        ).status_code == 200
    bob_list = [j["id"] for j in (await client.get("/v1/jobs", headers=bob.headers)).json()]
    assert job.id in bob_list and uploaded.json()["id"] in bob_list and mine not in bob_list

    alice_list = [j["id"] for j in (await client.get("/v1/jobs", headers=alice.headers)).json()]
    assert alice_list == [mine]

    h = alice.headers
    for target in (job.id, uploaded.json()["id"]):
        for method, path, body in [
            ("GET", "", None),
            ("GET", "/events", None),
            ("POST", "/events/token", None),
            ("GET", "/result", None),
            ("GET", "/result?format=srt", None),
            ("GET", "/artifacts", None),
            ("GET", "/audio", None),
            ("GET", "/speakers", None),
            ("PATCH", "/speakers/S1", {"name": "Mallory"}),
            ("GET", "/corrections", None),
            ("POST", "/corrections", {"kind": "fix_text", "segment": 0, "text": "x"}),
            ("POST", "/stages/diarize/replay", None),
            ("DELETE", "", None),
        ]:
            resp = await client.request(method, f"/v1/jobs/{target}{path}", headers=h, json=body)
            assert code(resp) == (404, "not_found"), (method, path, resp.text)

    # Nothing of Bob's changed.
    assert (await client.get(f"/v1/jobs/{job.id}", headers=bob.headers)).status_code == 200
    assert await services.corrections.list_corrections(job.id) == []
    assert services.store.exists(
        services.store.key_of((await services.jobs.get_job(job.id)).upload_uri)
    )


async def test_voiceprints_are_per_tenant(
    client: httpx.AsyncClient, services: Services, alice: Tenant, bob: Tenant
) -> None:
    bobs = await services.speakers.create_speaker(
        name="Bob's colleague", model="m", embedding=[1.0, 0.0], clip_uris=[], owner=bob.id
    )
    listed = await client.get("/v1/speakers", headers=alice.headers)
    assert bobs.id not in [s["id"] for s in listed.json()]
    gone = await client.delete(f"/v1/speakers/{bobs.id}", headers=alice.headers)
    assert code(gone) == (404, "not_found")
    # Identify, for a job of Alice's, sees only Alice's voiceprints.
    assert [v[0] for v in await services.speakers.voiceprints(alice.id)] == []
    assert [v[0] for v in await services.speakers.voiceprints(bob.id)] == [bobs.id]

    # Renaming with remember enrolls the voice for the job's owner only.
    job = await owned_job(services, bob)
    resp = await client.patch(
        f"/v1/jobs/{job.id}/speakers/S1", json={"name": "Bo", "remember": True}, headers=bob.headers
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["speaker_id"] in [v[0] for v in await services.speakers.voiceprints(bob.id)]
    # ... and an id of another tenant's speaker is unknown.
    alice_job = await owned_job(services, alice)
    steal = await client.patch(
        f"/v1/jobs/{alice_job.id}/speakers/S1",
        json={"name": "Bo", "remember": True, "speaker_id": bobs.id},
        headers=alice.headers,
    )
    assert code(steal) == (404, "not_found")

    listed = await client.get("/v1/speakers", headers=bob.headers)
    assert bobs.id in [s["id"] for s in listed.json()]
    assert (await client.delete(f"/v1/speakers/{bobs.id}", headers=bob.headers)).status_code == 204
    for v in await services.speakers.voiceprints(bob.id):
        await services.speakers.delete_speaker(v[0])


async def test_accuracy_metrics_are_per_tenant(
    client: httpx.AsyncClient, services: Services, alice: Tenant, bob: Tenant
) -> None:
    model = f"tenant-encoder@{uuid.uuid4().hex[:8]}"
    job = await owned_job(services, bob)
    ident = Identification(
        threshold=0.6,
        embedding_model=model,
        matches=[SpeakerMatch(label="S1", speaker_id="vp", name="Bo", score=0.9)],
    )
    await record_artifact(services, job.id, "identify", "k4", ident, model=model)
    renamed = await client.patch(
        f"/v1/jobs/{job.id}/speakers/S1", json={"name": "Bo"}, headers=bob.headers
    )
    assert renamed.status_code == 200, renamed.text

    def models(resp: httpx.Response) -> list[str]:
        assert resp.status_code == 200, resp.text
        return [m["embedding_model"] for m in resp.json()]

    assert model in models(await client.get("/v1/metrics/accuracy", headers=bob.headers))
    assert model not in models(await client.get("/v1/metrics/accuracy", headers=alice.headers))


# ---------------------------------------------------------------- stream tokens


async def test_stream_token_opens_events_and_audio_of_one_job(
    client: httpx.AsyncClient, services: Services, alice: Tenant
) -> None:
    job = await owned_job(services, alice)
    other = await owned_job(services, alice)
    resp = await client.post(f"/v1/jobs/{job.id}/events/token", headers=alice.headers)
    assert resp.status_code == 200, resp.text
    token = resp.json()["token"]
    assert resp.json()["expires_in"] == 600

    events = await client.get(f"/v1/jobs/{job.id}/events", params={"token": token})
    assert events.status_code == 200, events.text
    audio = await client.get(f"/v1/jobs/{job.id}/audio", params={"token": token})
    assert audio.status_code == 200 and audio.content == job.audio

    # Another job, another route, a forged or an expired token: refused.
    for path in (f"/v1/jobs/{other.id}/events", f"/v1/jobs/{other.id}/audio"):
        assert code(await client.get(path, params={"token": token})) == (401, "unauthorized")
    for path in ("/result", "/artifacts", ""):
        resp = await client.get(f"/v1/jobs/{job.id}{path}", params={"token": token})
        assert code(resp) == (401, "unauthorized"), path
    payload, signature = token.split(".")
    forged = f"{payload}.{'A' * len(signature)}"
    signed_elsewhere = stream_token("not the server's secret", job.id, alice.id, None)
    expired = stream_token(services.secret, job.id, alice.id, None, now=time.time() - 601)
    for bad in (forged, signed_elsewhere, expired, "garbage", ""):
        resp = await client.get(f"/v1/jobs/{job.id}/events", params={"token": bad})
        assert code(resp) == (401, "unauthorized"), bad


# ---------------------------------------------------------------- limits


async def test_upload_limit_of_the_key(client: httpx.AsyncClient, services: Services) -> None:
    small = await new_tenant(services, max_upload_bytes=1000)
    resp = await upload(client, small, wav_bytes(0.5))
    assert code(resp) == (413, "upload_too_large")
    assert (await upload(client, small, wav_bytes(0.01))).status_code == 202


async def test_concurrent_jobs_limit(client: httpx.AsyncClient, services: Services) -> None:
    tenant = await new_tenant(services, max_concurrent_jobs=1)
    first = await upload(client, tenant)
    assert first.status_code == 202
    second = await upload(client, tenant)
    assert code(second) == (429, "too_many_jobs")
    assert "1 unfinished job" in second.json()["error"]["message"]
    # Nor may a finished job be replayed meanwhile.
    done = await owned_job(services, tenant)
    replay = await client.post(f"/v1/jobs/{done.id}/stages/merge/replay", headers=tenant.headers)
    assert code(replay) == (429, "too_many_jobs")
    # Once the first has finished (its decode failed, under the stage's lease), another
    # is accepted.
    first_id = first.json()["id"]
    leases = LeaseStore(services.pool, services.graph)
    assert isinstance(await leases.acquire(first_id, "decode", "test", ttl_s=60), LeaseGrant)
    assert await leases.fail(first_id, "decode", "test", "made to fail")
    assert (await upload(client, tenant)).status_code == 202


async def test_duration_limit_fails_the_job_at_decode(
    client: httpx.AsyncClient, services: Services, auth_settings: Settings
) -> None:
    from stages.runtime import WorkerState
    from stages.tasks import run_stage

    tenant = await new_tenant(services, max_duration_s=1.0)
    resp = await upload(client, tenant, wav_bytes(3.0))
    assert resp.status_code == 202
    job_id = resp.json()["id"]
    state = await WorkerState.connect(auth_settings, reaper=False)
    try:
        with pytest.raises(Exception):  # noqa: B017 - the stage's failure, whatever its type
            await asyncio.wait_for(run_stage(state, "decode", job_id), timeout=30)
    finally:
        await state.close()
    job = await services.jobs.get_job(job_id)
    assert job.status == "failed" and job.error is not None and job.error.stage == "decode"
    assert "lasts 3.0 s; the limit is 1.0 s" in job.error.message, job.error.message


# ---------------------------------------------------------------- retention


async def test_retention_sweep_deletes_old_jobs(
    client: httpx.AsyncClient, services: Services, alice: Tenant
) -> None:
    old = await owned_job(services, alice)
    recent = await owned_job(services, alice)
    async with services.pool.acquire() as conn:
        await conn.execute(
            "UPDATE jobs SET created_at = now() - $2::interval WHERE id = $1",
            uuid.UUID(old.id),
            timedelta(days=31),
        )
    assert await sweep_once(services, None) == []
    deleted = await sweep_once(services, 30)
    assert old.id in deleted and recent.id not in deleted
    resp = await client.get(f"/v1/jobs/{old.id}", headers=alice.headers)
    assert code(resp) == (404, "not_found")
    assert not [p for p in Path(services.store.path(job_prefix(old.id))).rglob("*") if p.is_file()]
    assert (await client.get(f"/v1/jobs/{recent.id}", headers=alice.headers)).status_code == 200


async def test_the_gateway_sweeps_at_startup(
    services: Services, auth_settings: Settings, alice: Tenant
) -> None:
    old = await owned_job(services, alice)
    async with services.pool.acquire() as conn:
        await conn.execute(
            "UPDATE jobs SET created_at = now() - interval '3 days' WHERE id = $1",
            uuid.UUID(old.id),
        )
    keep_two_days = auth_settings.model_copy(update={"retention_days": 2.0})
    async with retention_sweeper(keep_two_days, services):
        for _ in range(100):
            if not await services.jobs.jobs_created_before(datetime.now(UTC) - timedelta(days=2)):
                break
            await asyncio.sleep(0.05)
    assert old.id not in [j.id for j in await services.jobs.list_jobs(500, owner=alice.id)]


# ---------------------------------------------------------------- the keys command


async def test_keys_command(
    client: httpx.AsyncClient, auth_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli import main
    from cli.main import app

    monkeypatch.setattr(main.out, "width", 400)  # the table's full ids, off a terminal
    assert auth_settings.database_url
    monkeypatch.setenv("SCRIBE_DATABASE_URL", auth_settings.database_url)
    monkeypatch.setenv("SCRIBE_DATA_DIR", str(auth_settings.data_dir))
    runner = CliRunner()
    name = f"cli-{uuid.uuid4().hex[:6]}"

    def invoke(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.stdout

    created = await asyncio.to_thread(invoke, "keys", "create", name, "--max-concurrent-jobs", "3")
    token = created.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/v1/jobs", headers=headers)).status_code == 200
    # `scribe --api-key` (or SCRIBE_API_KEY) sends it the same way.
    with ScribeClient("http://scribe", api_key=token) as cli_client:
        assert cli_client.http.headers["Authorization"] == f"Bearer {token}"

    # --admin makes a key that manages the tenant's keys over HTTP; `keys list` says so.
    admin = (await asyncio.to_thread(invoke, "keys", "create", f"{name}-a", "--admin")).split()[-1]
    me = (await client.get("/v1/me", headers={"X-API-Key": admin})).json()
    assert me["admin"] is True
    assert (await client.get("/v1/me", headers=headers)).json()["admin"] is False

    listed = await asyncio.to_thread(invoke, "keys", "list")
    assert name in listed and token not in listed
    assert any(f"{name}-a" in line and "admin" in line for line in listed.splitlines())
    assert not any(f"{name} " in line and "admin" in line for line in listed.splitlines())
    key_id = next(line.split()[1] for line in listed.splitlines() if name in line)
    await asyncio.to_thread(invoke, "keys", "revoke", key_id)
    assert code(await client.get("/v1/jobs", headers=headers)) == (401, "unauthorized")
