"""Tenants and their API keys in PostgreSQL. Only a key's sha256 is ever stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime

import asyncpg
from pydantic import BaseModel

from core.errors import NotFound

TOKEN_PREFIX = "scr_"
# Characters of the token kept in clear to find its row (the rest is the secret).
PREFIX_LEN = len(TOKEN_PREFIX) + 8


class ApiKey(BaseModel):
    id: str
    tenant_id: str
    tenant: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None
    admin: bool = False  # administers its tenant's keys over HTTP
    max_upload_bytes: int | None = None
    max_duration_s: float | None = None
    max_concurrent_jobs: int | None = None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        id=str(row["id"]),
        tenant_id=str(row["tenant_id"]),
        tenant=row["tenant"],
        name=row["name"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        admin=row["admin"],
        max_upload_bytes=row["max_upload_bytes"],
        max_duration_s=row["max_duration_s"],
        max_concurrent_jobs=row["max_concurrent_jobs"],
    )


_SELECT = "SELECT k.*, t.name AS tenant FROM api_keys k JOIN tenants t ON t.id = k.tenant_id"


class AuthStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def tenant(self, name: str) -> str:
        """The id of the tenant called `name`, created on first use."""
        async with self.pool.acquire() as conn:
            value = await conn.fetchval(
                "INSERT INTO tenants (id, name) VALUES ($1, $2)"
                " ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
                uuid.uuid4(),
                name,
            )
        return str(value)

    async def create_key(
        self,
        name: str,
        *,
        tenant: str | None = None,
        tenant_id: str | None = None,
        admin: bool = False,
        max_upload_bytes: int | None = None,
        max_duration_s: float | None = None,
        max_concurrent_jobs: int | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key for a tenant (by id, or by name: default a tenant named like the key)
        and its token, which is shown once and never stored."""
        if tenant_id is None:
            tenant_id = await self.tenant(tenant or name)
        token = new_token()
        key_id = uuid.uuid4()
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO api_keys (id, tenant_id, name, hash, prefix, admin, max_upload_bytes,"
                " max_duration_s, max_concurrent_jobs) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                key_id,
                uuid.UUID(tenant_id),
                name,
                hash_token(token),
                token[:PREFIX_LEN],
                admin,
                max_upload_bytes,
                max_duration_s,
                max_concurrent_jobs,
            )
        key = await self.key(str(key_id))
        assert key is not None
        return key, token

    async def key(self, key_id: str) -> ApiKey | None:
        """The key with this id (revoked or not), or None."""
        try:
            kid = uuid.UUID(key_id)
        except ValueError:
            return None
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(_SELECT + " WHERE k.id = $1", kid)
        return _key(row) if row is not None else None

    async def list_keys(self, tenant_id: str | None = None) -> list[ApiKey]:
        """Every key, or only one tenant's."""
        async with self.pool.acquire() as conn:
            if tenant_id is None:
                rows = await conn.fetch(_SELECT + " ORDER BY k.created_at")
            else:
                rows = await conn.fetch(
                    _SELECT + " WHERE k.tenant_id = $1 ORDER BY k.created_at",
                    uuid.UUID(tenant_id),
                )
        return [_key(r) for r in rows]

    async def revoke_key(self, key_id: str, tenant_id: str | None = None) -> ApiKey:
        """Revoke a key (of `tenant_id` only, when given: another tenant's key is not
        found, as if it did not exist)."""
        missing = NotFound(f"no API key with id {key_id!r}")
        try:
            kid = uuid.UUID(key_id)
        except ValueError:
            raise missing from None
        scope = None if tenant_id is None else uuid.UUID(tenant_id)
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "WITH revoked AS (UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())"
                " WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2) RETURNING *)"
                " SELECT k.*, t.name AS tenant FROM revoked k JOIN tenants t ON t.id = k.tenant_id",
                kid,
                scope,
            )
        if row is None:
            raise missing
        return _key(row)

    async def authenticate(self, token: str) -> ApiKey | None:
        """The live key this token is, or None (unknown or revoked)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        wanted = hash_token(token)
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                _SELECT + " WHERE k.prefix = $1 AND k.revoked_at IS NULL", token[:PREFIX_LEN]
            )
        found = None
        for row in rows:  # compare every candidate, in constant time each
            if hmac.compare_digest(row["hash"], wanted):
                found = row
        return _key(found) if found is not None else None

    async def key_active(self, key_id: str) -> bool:
        """Whether the key with this id exists and is not revoked."""
        try:
            kid = uuid.UUID(key_id)
        except ValueError:
            return False
        async with self.pool.acquire() as conn:
            found = await conn.fetchval(
                "SELECT 1 FROM api_keys WHERE id = $1 AND revoked_at IS NULL", kid
            )
        return found is not None

    async def server_secret(self, name: str = "auth") -> str:
        """A random secret shared by every gateway of this database, made on first use."""
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO server_secrets (name, value) VALUES ($1, $2)"
                " ON CONFLICT (name) DO NOTHING",
                name,
                secrets.token_urlsafe(32),
            )
            value = await conn.fetchval("SELECT value FROM server_secrets WHERE name = $1", name)
        return str(value)
