"""Key administration over HTTP with an admin key, against real PostgreSQL: an admin sees and
changes only its own tenant's keys, plain keys and stream tokens cannot administer, a key an
admin makes can do no more than the admin's own, and a revoked key stops at once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from core.settings import Settings
from gateway.auth import stream_token
from gateway.services import Services
from tests.integration.stored_jobs import finished_job
from tests.support import app_client
from tests.tenants import Tenant


async def admin_of(services: Services, **limits: int | float) -> Tenant:
    key, token = await services.auth.create_key(
        f"admin-{uuid.uuid4().hex[:8]}",
        admin=True,
        **limits,  # type: ignore[arg-type]
    )
    return Tenant(key.tenant_id, key.id, token)


async def plain_key_of(services: Services, tenant: Tenant) -> Tenant:
    key, token = await services.auth.create_key("plain", tenant_id=tenant.id)
    return Tenant(key.tenant_id, key.id, token)


async def test_an_admin_creates_lists_and_revokes_its_tenants_keys(
    client: httpx.AsyncClient, services: Services
) -> None:
    admin = await admin_of(services)
    me = (await client.get("/v1/me", headers=admin.headers)).json()
    assert me["auth"] is True and me["admin"] is True and me["key_id"] == admin.key_id

    made = await client.post(
        "/v1/keys", headers=admin.headers, json={"name": "alice-laptop", "max_duration_s": 600}
    )
    assert made.status_code == 201, made.text
    body = made.json()
    new = Tenant(admin.id, body["key"]["id"], body["token"])
    assert body["token"].startswith(body["key"]["prefix"]) and body["key"]["admin"] is False
    assert body["key"]["max_duration_s"] == 600 and body["key"]["max_upload_bytes"] is None

    # The new key works, in the admin's tenant: it sees what the admin's tenant owns.
    me_new = (await client.get("/v1/me", headers=new.headers)).json()
    assert me_new["admin"] is False and me_new["tenant"] == me["tenant"]
    assert me_new["max_duration_s"] == 600
    listed = (await client.get("/v1/keys", headers=admin.headers)).json()
    assert [k["id"] for k in listed] == [admin.key_id, new.key_id]
    assert all("token" not in k and "hash" not in k for k in listed)

    revoked = await client.delete(f"/v1/keys/{new.key_id}", headers=admin.headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert (await client.get("/v1/jobs", headers=new.headers)).status_code == 401
    again = (await client.get("/v1/keys", headers=admin.headers)).json()
    assert next(k for k in again if k["id"] == new.key_id)["revoked_at"] is not None


async def test_admins_never_see_or_touch_another_tenants_keys(
    client: httpx.AsyncClient, services: Services
) -> None:
    alice, bob = await admin_of(services), await admin_of(services)
    bobs_plain = await plain_key_of(services, bob)
    listed = (await client.get("/v1/keys", headers=alice.headers)).json()
    assert {k["id"] for k in listed} == {alice.key_id}
    # Another tenant's key is not found, as if it did not exist; it keeps working.
    for key_id in (bob.key_id, bobs_plain.key_id, str(uuid.uuid4()), "not-a-uuid"):
        resp = await client.delete(f"/v1/keys/{key_id}", headers=alice.headers)
        assert resp.status_code == 404, (key_id, resp.text)
    assert (await client.get("/v1/jobs", headers=bobs_plain.headers)).status_code == 200
    # A key made by alice belongs to alice's tenant, whatever the body says.
    resp = await client.post(
        "/v1/keys", headers=alice.headers, json={"name": "x", "tenant_id": bob.id}
    )
    assert resp.status_code == 422, resp.text
    made = await client.post("/v1/keys", headers=alice.headers, json={"name": "x"})
    token = made.json()["token"]
    bobs_job = await finished_job(services)
    async with services.pool.acquire() as conn:
        await conn.execute(
            "UPDATE jobs SET owner = $2 WHERE id = $1", uuid.UUID(bobs_job.id), uuid.UUID(bob.id)
        )
    seen = await client.get(f"/v1/jobs/{bobs_job.id}", headers={"X-API-Key": token})
    assert seen.status_code == 404


async def test_plain_keys_stream_tokens_and_anonymous_callers_cannot_administer(
    client: httpx.AsyncClient, services: Services
) -> None:
    admin = await admin_of(services)
    plain = await plain_key_of(services, admin)
    for method, path, body in (
        ("GET", "/v1/keys", None),
        ("POST", "/v1/keys", {"name": "mine", "admin": True}),
        ("DELETE", f"/v1/keys/{admin.key_id}", None),
    ):
        resp = await client.request(method, path, headers=plain.headers, json=body)
        assert resp.status_code == 403, resp.text
        assert "admin key" in resp.json()["error"]["message"]
        assert (await client.request(method, path, json=body)).status_code == 401
    # A stream token opens one job's events and audio, nothing else.
    job = await finished_job(services)
    token = stream_token(services.secret, job.id, admin.id, admin.key_id)
    resp = await client.get("/v1/keys", params={"token": token})
    assert resp.status_code == 401
    me = (await client.get("/v1/me", headers=plain.headers)).json()
    assert me["admin"] is False


async def test_an_admin_cannot_grant_more_than_its_own_limits(
    client: httpx.AsyncClient, services: Services
) -> None:
    admin = await admin_of(services, max_upload_bytes=1_000_000, max_concurrent_jobs=2)
    over = await client.post(
        "/v1/keys", headers=admin.headers, json={"name": "big", "max_upload_bytes": 2_000_000}
    )
    assert over.status_code == 403 and "max_upload_bytes" in over.json()["error"]["message"]
    inherited = await client.post("/v1/keys", headers=admin.headers, json={"name": "small"})
    key = inherited.json()["key"]
    assert key["max_upload_bytes"] == 1_000_000 and key["max_concurrent_jobs"] == 2
    lower = await client.post(
        "/v1/keys", headers=admin.headers, json={"name": "tiny", "max_upload_bytes": 1000}
    )
    assert lower.json()["key"]["max_upload_bytes"] == 1000
    for bad in ({"name": ""}, {"name": "n", "max_duration_s": -1}, {"name": "n", "role": "x"}):
        resp = await client.post("/v1/keys", headers=admin.headers, json=bad)
        assert resp.status_code == 422, (bad, resp.text)


async def test_an_admin_cannot_revoke_the_key_it_is_using(
    client: httpx.AsyncClient, services: Services
) -> None:
    admin = await admin_of(services)
    resp = await client.delete(f"/v1/keys/{admin.key_id}", headers=admin.headers)
    assert resp.status_code == 409 and "scribe keys revoke" in resp.json()["error"]["message"]
    assert (await client.get("/v1/keys", headers=admin.headers)).status_code == 200


@pytest.fixture
async def open_client(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings.model_copy(update={"auth": "off"}), services) as c:
        yield c


async def test_without_auth_there_are_no_keys_to_manage(open_client: httpx.AsyncClient) -> None:
    me = (await open_client.get("/v1/me")).json()
    assert me == {**me, "auth": False, "admin": False}
    resp = await open_client.get("/v1/keys")
    assert resp.status_code == 409 and "without API keys" in resp.json()["error"]["message"]
