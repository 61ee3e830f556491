"""Who the caller is (`GET /v1/me`) and, for an admin key, its tenant's API keys:
`GET /v1/keys`, `POST /v1/keys`, `DELETE /v1/keys/{key_id}`.

An admin key sees and changes only its own tenant's keys; another tenant's key answers 404,
as if it did not exist. A key it makes is never allowed more than the admin key itself (a
limit left out is the admin's own), so an admin cannot hand out what the operator did not
grant. Across tenants, keys are the operator's: `scribe keys` on the database.

Key ids are compared as UUIDs, not as text: `DELETE /v1/keys/<own id in upper case>` is
still the caller's own key (409). A new key's limits are positive and fit their columns
(bigint, double precision, integer), or the request is a 422 that names the field.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from core.errors import Conflict, Forbidden, NotFound
from core.settings import Settings
from gateway.auth import Principal
from gateway.http.deps import PrincipalDep, ServicesDep, SettingsDep
from storage.auth import ApiKey

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


def _out(key: ApiKey) -> KeyOut:
    return KeyOut.model_validate(key.model_dump())


def _admin_of(principal: Principal, settings: Settings) -> Principal:
    if not settings.auth_enabled:
        raise Conflict("this server runs without API keys (auth is off): there are none to manage")
    if not principal.admin or principal.owner is None:
        raise Forbidden("managing API keys needs an admin key (scribe keys create --admin)")
    return principal


def bounded_limits(admin: Principal, asked: KeyRequest) -> Limits:
    """The new key's limits: what was asked, the admin's own where it is left out; more
    than the admin's own is refused."""
    limits = Limits()
    for name in LIMITS:
        own, wanted = getattr(admin, name), getattr(asked, name)
        if own is not None and wanted is not None and wanted > own:
            raise Forbidden(f"{name} {wanted} is more than your own key's ({own})")
        setattr(limits, name, wanted if wanted is not None else own)
    return limits


@router.get("/me", response_model=Me)
async def me(principal: PrincipalDep, services: ServicesDep, settings: SettingsDep) -> Me:
    """The caller: whether the server has keys, and the key's tenant, role and limits."""
    if not settings.auth_enabled or principal.key_id is None:
        return Me(auth=settings.auth_enabled, admin=False)
    key = await services.auth.key(principal.key_id)
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
    admin = _admin_of(principal, settings)
    return [_out(k) for k in await services.auth.list_keys(admin.owner)]


@router.post("/keys", response_model=KeyCreated, status_code=201)
async def create_key(
    body: KeyRequest, principal: PrincipalDep, services: ServicesDep, settings: SettingsDep
) -> KeyCreated:
    """A new key for the admin's own tenant; its token is in this answer only."""
    admin = _admin_of(principal, settings)
    limits = bounded_limits(admin, body)
    key, token = await services.auth.create_key(
        body.name,
        tenant_id=admin.owner,
        admin=body.admin,
        max_upload_bytes=limits.max_upload_bytes,
        max_duration_s=limits.max_duration_s,
        max_concurrent_jobs=limits.max_concurrent_jobs,
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
    admin = _admin_of(principal, settings)
    try:
        wanted = uuid.UUID(key_id)
    except ValueError:
        raise NotFound(f"no API key with id {key_id!r}") from None
    if admin.key_id is not None and wanted == uuid.UUID(admin.key_id):
        raise Conflict(
            "this is the key you are using: revoke it with another admin key, or with"
            " `scribe keys revoke`"
        )
    return _out(await services.auth.revoke_key(str(wanted), admin.owner))
