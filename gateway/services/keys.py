"""API keys, as an admin key administers its own tenant's: list, create, revoke; and the
caller's own key (`GET /v1/me`).

An admin key sees and changes only its own tenant's keys; another tenant's key is
NotFound, as if it did not exist. A key it makes is never allowed more than the admin key
itself (a limit left out is the admin's own), so an admin cannot hand out what the
operator did not grant. Key ids are compared as UUIDs, not as text.

Across tenants, keys are the operator's: `scribe keys` (cli/keys.py) works on the
database directly, with no admin key, no tenant scope and no bound on limits, so it does
not go through these.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields, replace

from core.errors import Conflict, Forbidden, NotFound
from core.settings import Settings
from gateway.auth import Principal
from gateway.services.container import Services
from storage.auth import ApiKey


@dataclass(frozen=True)
class KeyLimits:
    """A key's limits; None: the server's own."""

    max_upload_bytes: int | None = None
    max_duration_s: float | None = None
    max_concurrent_jobs: int | None = None


LIMITS = tuple(f.name for f in fields(KeyLimits))


def admin_of(principal: Principal, settings: Settings) -> Principal:
    """The caller, when it may administer its tenant's keys: Conflict (409) with auth
    off (there are no keys), Forbidden (403) for a key that is not an admin key."""
    if not settings.auth_enabled:
        raise Conflict("this server runs without API keys (auth is off): there are none to manage")
    if not principal.admin or principal.owner is None:
        raise Forbidden("managing API keys needs an admin key (scribe keys create --admin)")
    return principal


def bounded_limits(admin: Principal, asked: KeyLimits) -> KeyLimits:
    """The new key's limits: what was asked, the admin's own where it is left out; more
    than the admin's own is refused."""
    limits = KeyLimits()
    for name in LIMITS:
        own, wanted = getattr(admin, name), getattr(asked, name)
        if own is not None and wanted is not None and wanted > own:
            raise Forbidden(f"{name} {wanted} is more than your own key's ({own})")
        limits = replace(limits, **{name: wanted if wanted is not None else own})
    return limits


async def own_key(services: Services, principal: Principal) -> ApiKey | None:
    """The key the caller authenticated with (None: no key, auth off)."""
    if principal.key_id is None:
        return None
    return await services.auth.key(principal.key_id)


async def list_keys(services: Services, settings: Settings, principal: Principal) -> list[ApiKey]:
    """The admin's tenant's keys, revoked ones included (never a token)."""
    admin = admin_of(principal, settings)
    return await services.auth.list_keys(admin.owner)


async def create_key(
    services: Services,
    settings: Settings,
    principal: Principal,
    *,
    name: str,
    admin: bool,
    limits: KeyLimits,
) -> tuple[ApiKey, str]:
    """A new key for the admin's own tenant, and its token (shown once; only its hash is
    stored)."""
    caller = admin_of(principal, settings)
    bounded = bounded_limits(caller, limits)
    return await services.auth.create_key(
        name,
        tenant_id=caller.owner,
        admin=admin,
        max_upload_bytes=bounded.max_upload_bytes,
        max_duration_s=bounded.max_duration_s,
        max_concurrent_jobs=bounded.max_concurrent_jobs,
    )


async def revoke_key(
    services: Services, settings: Settings, principal: Principal, key_id: str
) -> ApiKey:
    """Revoke one of the tenant's keys: requests with it get 401 from now on. Conflict
    (409) for the caller's own key, whatever the case of its id."""
    admin = admin_of(principal, settings)
    try:
        wanted = uuid.UUID(key_id)
    except ValueError:
        raise NotFound(f"no API key with id {key_id!r}") from None
    if admin.key_id is not None and wanted == uuid.UUID(admin.key_id):
        raise Conflict(
            "this is the key you are using: revoke it with another admin key, or with"
            " `scribe keys revoke`"
        )
    return await services.auth.revoke_key(str(wanted), admin.owner)
