"""A tenant with an API key, made through the real key store, for tests with auth on."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from storage.auth import AuthStore


@dataclass
class Tenant:
    id: str
    key_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def new_tenant(auth: AuthStore, **limits: float) -> Tenant:
    """A new tenant and key (named at random), with the given per-key limits."""
    key, token = await auth.create_key(f"t-{uuid.uuid4().hex[:8]}", **limits)  # type: ignore[arg-type]
    return Tenant(key.tenant_id, key.id, token)
