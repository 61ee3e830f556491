"""The smaller holes, each closed: id spellings, stream tokens that outlive their key,
languages Whisper does not know, server paths shown to clients, leftovers of rejected
enrollments. Against the real uvicorn gateway of tests/security/conftest.py."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from core.artifacts import WHISPER_LANGUAGES
from gateway.routes import events
from storage.artifacts import job_prefix
from tests.integration.stored_jobs import finished_job, wav_bytes
from tests.security.conftest import Gateway
from tests.tenants import Tenant


async def upload(gw: Gateway, tenant: Tenant, **fields: str) -> httpx.Response:
    async with gw.client(tenant) as c:
        return await c.post(
            "/v1/jobs", files={"file": ("a.wav", wav_bytes(1.0), "audio/wav")}, data=fields
        )


async def owned_finished_job(gw: Gateway, tenant: Tenant) -> str:
    job = await finished_job(gw.services)
    async with gw.services.pool.acquire() as conn:
        await conn.execute(
            "UPDATE jobs SET owner = $2 WHERE id = $1", uuid.UUID(job.id), uuid.UUID(tenant.id)
        )
    return job.id


async def test_delete_with_an_upper_case_id_removes_everything(
    gateway: Gateway, alice: Tenant
) -> None:
    resp = await upload(gateway, alice)
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["id"]
    store, bus = gateway.services.store, gateway.services.bus
    assert store.fs.exists(store.path(job_prefix(job_id)))
    assert await bus.history(job_id)  # job.queued
    async with gateway.client(alice) as c:
        resp = await c.delete(f"/v1/jobs/{job_id.upper()}")
        assert resp.status_code == 204, resp.text
        assert (await c.get(f"/v1/jobs/{job_id}")).status_code == 404
    assert not store.fs.exists(store.path(job_prefix(job_id)))
    assert await bus.history(job_id) == []


async def test_other_spellings_of_an_id_name_the_same_job(gateway: Gateway, alice: Tenant) -> None:
    job_id = (await upload(gateway, alice)).json()["id"]
    async with gateway.client(alice) as c:
        for spelling in (job_id.upper(), job_id.replace("-", ""), f"{{{job_id}}}"):
            resp = await c.get(f"/v1/jobs/{spelling}")
            assert resp.status_code == 200, (spelling, resp.text)
            assert resp.json()["id"] == job_id
        assert (await c.get("/v1/jobs/not-a-job")).status_code == 404


async def stream_token(gw: Gateway, tenant: Tenant, job_id: str) -> str:
    async with gw.client(tenant) as c:
        resp = await c.post(f"/v1/jobs/{job_id}/events/token")
    assert resp.status_code == 200, resp.text
    return str(resp.json()["token"])


async def test_a_revoked_keys_stream_token_stops_working(gateway: Gateway) -> None:
    bea = await gateway.tenant()
    job_id = await owned_finished_job(gateway, bea)
    token = await stream_token(gateway, bea, job_id)
    async with gateway.client() as anonymous:
        assert (await anonymous.get(f"/v1/jobs/{job_id}/audio?token={token}")).status_code == 200
        await gateway.services.auth.revoke_key(bea.key_id)
        for route in ("events", "audio"):
            resp = await anonymous.get(f"/v1/jobs/{job_id}/{route}?token={token}")
            assert resp.status_code == 401, (route, resp.text)


async def test_an_open_stream_ends_when_its_key_is_revoked(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "PING_S", 0.5)  # how often an open stream re-checks
    cy = await gateway.tenant()
    resp = await upload(gateway, cy)
    job_id = resp.json()["id"]  # queued, no worker: the stream stays open
    token = await stream_token(gateway, cy, job_id)
    url = f"/v1/jobs/{job_id}/events?token={token}"
    async with gateway.client() as anonymous, anonymous.stream("GET", url, timeout=20) as stream:
        assert stream.status_code == 200
        lines = stream.aiter_lines()
        while "job.queued" not in await anext(lines):
            pass
        await gateway.services.auth.revoke_key(cy.key_id)

        async def drain() -> None:
            async for _ in lines:
                pass

        await asyncio.wait_for(drain(), timeout=10)  # the server ended the stream


async def test_a_stream_token_opens_only_the_events_and_audio(
    gateway: Gateway, alice: Tenant
) -> None:
    job_id = await owned_finished_job(gateway, alice)
    token = await stream_token(gateway, alice, job_id)
    async with gateway.client() as anonymous:
        for route in ("events", "audio"):
            resp = await anonymous.get(f"/v1/jobs/{job_id}/{route}?token={token}")
            assert resp.status_code == 200, (route, resp.text)
        for method, path in (
            ("GET", ""),
            ("GET", "/result"),
            ("GET", "/artifacts"),
            ("GET", "/speakers"),
            ("POST", "/events/token"),
            ("DELETE", ""),
        ):
            resp = await anonymous.request(method, f"/v1/jobs/{job_id}{path}?token={token}")
            assert resp.status_code == 401, (method, path, resp.text)


def test_the_language_list_is_whispers() -> None:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    assert set(_LANGUAGE_CODES) == WHISPER_LANGUAGES


async def test_an_unknown_language_is_refused_at_the_door(gateway: Gateway, alice: Tenant) -> None:
    resp = await upload(gateway, alice, language="zz")
    assert resp.status_code == 422, resp.text
    assert "'zz' is not a language the transcriber knows" in resp.json()["error"]["message"]
    resp = await upload(gateway, alice, language="FR")
    assert resp.status_code == 422 and "did you mean 'fr'?" in resp.json()["error"]["message"]
    assert (await upload(gateway, alice, language="fr")).status_code == 202


async def test_a_replay_with_an_unknown_language_keeps_the_job_as_it_was(
    gateway: Gateway, alice: Tenant
) -> None:
    job_id = await owned_finished_job(gateway, alice)
    async with gateway.client(alice) as c:
        before = (await c.get(f"/v1/jobs/{job_id}")).json()
        resp = await c.post(
            f"/v1/jobs/{job_id}/stages/transcribe/replay", json={"params": {"language": "zz"}}
        )
        assert resp.status_code == 422, resp.text
        after = (await c.get(f"/v1/jobs/{job_id}")).json()
        assert (after["status"], after["params"]) == (before["status"], before["params"])
        assert (await c.get(f"/v1/jobs/{job_id}/result")).status_code == 200


async def test_no_server_path_is_shown_to_clients(gateway: Gateway, alice: Tenant) -> None:
    root = gateway.services.store.root
    job_id = (await upload(gateway, alice)).json()["id"]
    async with gateway.client(alice) as c:
        for path in (f"/v1/jobs/{job_id}", "/v1/jobs", "/v1/speakers"):
            resp = await c.get(path)
            assert resp.status_code == 200, resp.text
            assert root not in resp.text and "upload_uri" not in resp.text, (path, resp.text)
            assert "clip_uris" not in resp.text


async def test_a_rejected_enrollment_leaves_no_folder(gateway: Gateway, alice: Tenant) -> None:
    store = gateway.services.store
    speakers = store.path("speakers")
    before = set(store.fs.ls(speakers)) if store.fs.exists(speakers) else set()
    async with gateway.client(alice) as c:
        resp = await c.post(
            "/v1/speakers",
            data={"name": "Dee"},
            files=[
                ("files", ("voice.wav", wav_bytes(1.0), "audio/wav")),  # stored, then dropped
                ("files", ("notes.wav", b"these are notes, not a voice\n" * 40, "audio/wav")),
            ],
        )
    assert resp.status_code == 415, resp.text
    after = set(store.fs.ls(speakers)) if store.fs.exists(speakers) else set()
    assert after == before
