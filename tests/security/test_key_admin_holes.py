"""An admin key's requests that used to go wrong, against the real uvicorn gateway of
tests/security/conftest.py: its own id spelled in upper case revoked it (the admin locked
itself out), a malformed id must never be a 500, and a limit past what its database column
holds was a 500 (`value out of int64 range`) instead of a 422 that names the field."""

from __future__ import annotations

import json
import uuid

import pytest

from gateway.routes.keys import BIGINT_MAX, INTEGER_MAX
from tests.security.conftest import Gateway
from tests.tenants import Tenant


async def admin_key(gw: Gateway) -> Tenant:
    key, token = await gw.services.auth.create_key(f"admin-{uuid.uuid4().hex[:8]}", admin=True)
    return Tenant(key.tenant_id, key.id, token)


@pytest.mark.parametrize(
    "spelling",
    [str.upper, lambda i: i.replace("-", ""), lambda i: f"{{{i}}}", lambda i: f"urn:uuid:{i}"],
    ids=["upper-case", "no-dashes", "braces", "urn"],
)
async def test_an_admin_cannot_revoke_its_own_key_by_another_spelling(
    gateway: Gateway, spelling: object
) -> None:
    admin = await admin_key(gateway)
    other = spelling(admin.key_id)  # type: ignore[operator]
    assert other != admin.key_id
    async with gateway.client(admin) as c:
        resp = await c.delete(f"/v1/keys/{other}")
        assert resp.status_code == 409, resp.text
        assert "this is the key you are using" in resp.json()["error"]["message"]
        assert (await c.get("/v1/me")).status_code == 200  # still in


async def test_another_key_is_revoked_whatever_the_spelling(gateway: Gateway) -> None:
    admin = await admin_key(gateway)
    async with gateway.client(admin) as c:
        made = await c.post("/v1/keys", json={"name": "laptop"})
        assert made.status_code == 201, made.text
        key_id = made.json()["key"]["id"]
        resp = await c.delete(f"/v1/keys/{key_id.upper()}")
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == key_id and resp.json()["revoked_at"] is not None


@pytest.mark.parametrize("bad", ["not-a-key", "0" * 64, "%00", "1-2-3", "x" * 65])
async def test_a_malformed_key_id_is_a_4xx_with_a_message(gateway: Gateway, bad: str) -> None:
    admin = await admin_key(gateway)
    async with gateway.client(admin) as c:
        resp = await c.delete(f"/v1/keys/{bad}")
    assert resp.status_code in (404, 422), resp.text
    assert resp.json()["error"]["message"]


# What each limit's column holds (migrations/005_auth.sql): bigint, double precision, integer.
TOO_LARGE = [
    ("max_upload_bytes", "1e20"),
    ("max_upload_bytes", str(BIGINT_MAX + 1)),
    ("max_upload_bytes", "1" + "0" * 400),
    ("max_duration_s", "1e400"),  # JSON's way to say infinity
    ("max_duration_s", "Infinity"),
    ("max_duration_s", "NaN"),
    ("max_concurrent_jobs", str(INTEGER_MAX + 1)),
    ("max_concurrent_jobs", "1e20"),
    ("max_upload_bytes", "0"),
    ("max_duration_s", "-1"),
    ("max_concurrent_jobs", "-5"),
]


@pytest.mark.parametrize(("field", "value"), TOO_LARGE)
async def test_a_limit_out_of_range_is_a_422_naming_the_field(
    gateway: Gateway, field: str, value: str
) -> None:
    admin = await admin_key(gateway)
    body = f'{{"name": "big", "{field}": {value}}}'
    async with gateway.client(admin) as c:
        resp = await c.post("/v1/keys", content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith(f"{field}: "), error


async def test_the_largest_limits_the_columns_hold_are_kept(gateway: Gateway) -> None:
    admin = await admin_key(gateway)
    wanted = {
        "max_upload_bytes": BIGINT_MAX,
        "max_duration_s": 1e300,
        "max_concurrent_jobs": INTEGER_MAX,
    }
    async with gateway.client(admin) as c:
        resp = await c.post("/v1/keys", content=json.dumps({"name": "roomy", **wanted}),
                            headers={"Content-Type": "application/json"})  # fmt: skip
    assert resp.status_code == 201, resp.text
    assert {k: resp.json()["key"][k] for k in wanted} == wanted
