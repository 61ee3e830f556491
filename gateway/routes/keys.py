"""Who the caller is (`GET /v1/me`) and, for an admin key, its tenant's API keys:
`GET /v1/keys`, `POST /v1/keys`, `DELETE /v1/keys/{key_id}`.

The rules (an admin key sees and changes only its own tenant's keys, never hands out more
than its own limits; key ids compared as UUIDs) are in gateway/services/keys.py. Here, the
bodies: a new key's limits are positive and fit their columns (bigint, double precision,
integer), or the request is a 422 that names the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from gateway.http.deps import PrincipalDep, ServicesDep, SettingsDep
from gateway.services import keys
from gateway.services.keys import KeyLimits

router = APIRouter(prefix="/v1", tags=["keys"])


BIGINT_MAX = 2**63 - 1
INTEGER_MAX = 2**31 - 1


class Limits(BaseModel):
    """A key's limits; null: the server's own."""

    max_upload_bytes: int | None = None
    max_duration_s: float | None = None
    max_concurrent_jobs: int | None = None


LIMITS = tuple(Limits.model_fields)


class Me(Limits):
    auth: bool  # false: single-user server, no keys
    admin: bool  # the caller may administer its tenant's keys
    key_id: str | None = None
    key_name: str | None = None
    tenant: str | None = None


class KeyOut(Limits):
    id: str
    name: str
    tenant: str
    prefix: str  # the token's first characters, to tell keys apart
    admin: bool
    created_at: datetime
    revoked_at: datetime | None = None


class KeyCreated(BaseModel):
    key: KeyOut
    token: str  # shown this once; only its hash is stored


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    admin: bool = False
    # Bounded by the columns of api_keys (migrations/005_auth.sql): past them, PostgreSQL
    # refuses the row and the answer would be a 500.
    max_upload_bytes: int | None = Field(default=None, gt=0, le=BIGINT_MAX)
    max_duration_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    max_concurrent_jobs: int | None = Field(default=None, gt=0, le=INTEGER_MAX)


def _out(key: BaseModel) -> KeyOut:
    return KeyOut.model_validate(key.model_dump())


@router.get("/me", response_model=Me)
async def me(principal: PrincipalDep, services: ServicesDep, settings: SettingsDep) -> Me:
    """The caller: whether the server has keys, and the key's tenant, role and limits."""
    if not settings.auth_enabled or principal.key_id is None:
        return Me(auth=settings.auth_enabled, admin=False)
    key = await keys.own_key(services, principal)
    return Me(
        auth=True,
        admin=principal.admin,
        key_id=principal.key_id,
        key_name=key.name if key else None,
        tenant=key.tenant if key else None,
        **{name: getattr(principal, name) for name in LIMITS},
    )


@router.get("/keys", response_model=list[KeyOut])
async def list_keys(
    principal: PrincipalDep, services: ServicesDep, settings: SettingsDep
) -> list[KeyOut]:
    """The admin's tenant's keys, revoked ones included (never a token)."""
    return [_out(k) for k in await keys.list_keys(services, settings, principal)]


@router.post("/keys", response_model=KeyCreated, status_code=201)
async def create_key(
    body: KeyRequest, principal: PrincipalDep, services: ServicesDep, settings: SettingsDep
) -> KeyCreated:
    """A new key for the admin's own tenant; its token is in this answer only."""
    limits = KeyLimits(**{name: getattr(body, name) for name in LIMITS})
    key, token = await keys.create_key(
        services, settings, principal, name=body.name, admin=body.admin, limits=limits
    )
    return KeyCreated(key=_out(key), token=token)


@router.delete("/keys/{key_id}", response_model=KeyOut)
async def revoke_key(
    key_id: Annotated[str, Path(max_length=64)],
    principal: PrincipalDep,
    services: ServicesDep,
    settings: SettingsDep,
) -> KeyOut:
    """Revoke one of the tenant's keys: requests with it get 401 from now on."""
    return _out(await keys.revoke_key(services, settings, principal, key_id))
