"""Who is asking: an API key (header), or a short-lived signed token for one job's event
stream and audio (EventSource and <audio> cannot send headers).

With auth off every request is the single-user owner (`Principal.owner` None), which the
stores read as "unscoped".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import Request

from core.errors import Unauthorized
from core.settings import Settings
from storage.auth import AuthStore

STREAM_TOKEN_TTL_S = 600
# The routes a stream token opens, for the job it names: nothing else.
STREAM_ROUTES = frozenset({"/v1/jobs/{job_id}/events", "/v1/jobs/{job_id}/audio"})


@dataclass(frozen=True)
class Principal:
    owner: str | None = None  # tenant id; None: the single-user owner (auth off)
    key_id: str | None = None
    admin: bool = False  # the key administers its tenant's keys (never a stream token)
    max_upload_bytes: int | None = None
    max_duration_s: float | None = None
    max_concurrent_jobs: int | None = None


SINGLE_USER = Principal()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def stream_token(
    secret: str, job_id: str, owner: str | None, key_id: str | None, *, now: float | None = None
) -> str:
    """A token good for `job_id`'s events and audio for STREAM_TOKEN_TTL_S seconds, and
    for as long as the API key it was issued to (`key_id`) is not revoked."""
    expires = int((now if now is not None else time.time()) + STREAM_TOKEN_TTL_S)
    payload = f"{job_id}|{owner or ''}|{key_id or ''}|{expires}"
    return f"{_b64(payload.encode())}.{_sign(secret, payload)}"


@dataclass(frozen=True)
class StreamGrant:
    owner: str | None
    key_id: str | None


def check_stream_token(
    secret: str, token: str, job_id: str, *, now: float | None = None
) -> StreamGrant:
    """Who a valid, unexpired token for `job_id` was issued to; Unauthorized else."""
    bad = Unauthorized("the stream token is invalid or has expired; ask for a new one")
    try:
        encoded, signature = token.split(".", 1)
        payload = _unb64(encoded).decode()
        token_job, owner, key_id, expires = payload.split("|")
        expiry = int(expires)
    except (ValueError, UnicodeDecodeError):
        raise bad from None
    if not hmac.compare_digest(signature, _sign(secret, payload)):
        raise bad
    if token_job != job_id or expiry < (now if now is not None else time.time()):
        raise bad
    return StreamGrant(owner or None, key_id or None)


def api_key_of(headers: Mapping[str, str]) -> str | None:
    """The API key a request carries (`Authorization: Bearer` or `X-API-Key`), if any."""
    header = headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = headers.get("x-api-key")
    return key.strip() if key else None


async def principal_for_key(auth: AuthStore, token: str) -> Principal:
    key = await auth.authenticate(token)
    if key is None:
        raise Unauthorized("the API key is unknown or has been revoked")
    return Principal(
        owner=key.tenant_id,
        key_id=key.id,
        admin=key.admin,
        max_upload_bytes=key.max_upload_bytes,
        max_duration_s=key.max_duration_s,
        max_concurrent_jobs=key.max_concurrent_jobs,
    )


async def resolve_principal(
    request: Request, settings: Settings, auth: AuthStore, secret: str
) -> Principal:
    if not settings.auth_enabled:
        return SINGLE_USER
    # Checked already, before the body was read (gateway.http.guard).
    known = getattr(request.state, "principal", None)
    if isinstance(known, Principal):
        return known
    token = api_key_of(request.headers)
    if token is not None:
        return await principal_for_key(auth, token)
    stream = request.query_params.get("token")
    job_id = request.path_params.get("job_id")
    route = getattr(request.scope.get("route"), "path", None)
    if stream and job_id and request.method in ("GET", "HEAD") and route in STREAM_ROUTES:
        grant = check_stream_token(secret, stream, str(job_id))
        # Issued with auth off, it scopes nothing, so it opens nothing; issued to a key,
        # it dies with the key.
        if grant.owner is None or (grant.key_id and not await auth.key_active(grant.key_id)):
            raise Unauthorized("the stream token is invalid or has expired; ask for a new one")
        return Principal(owner=grant.owner, key_id=grant.key_id)
    raise Unauthorized(
        "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
    )
