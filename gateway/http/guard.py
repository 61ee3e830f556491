"""What every request meets before any route reads a byte of its body.

A pure ASGI middleware, because FastAPI reads and parses a JSON body before it resolves a
route's dependencies (the API key among them), so a route-level check comes too late:

- **other sites first** (gateway.http.same_origin): with auth off, a Host the gateway does not
  answer to is a 421 (DNS rebinding); with auth on or off, a browser's request that
  changes something, sent from another site's page, is a 403;
- **authentication**: on /v1 routes, a request that carries an API key is checked
  against it before its body is read; one that writes (POST, PATCH, PUT, DELETE) without
  a key is refused at once (stream tokens open only the GET routes of one job);
- **a small body limit** on every route but the two uploads: a larger `Content-Length`
  is a 413 before reading, a longer body (chunked) is cut at the limit; such a body is
  read here, whole, then handed to the route;
- **timeouts**: a body whose next chunk does not arrive within `body_idle_timeout_s`, or
  that is not complete within `request_body_timeout_s` (an upload: `upload_timeout_s`),
  ends with a 408 (a `Content-Length` larger than what is sent is one of these): a slow
  client holds a connection for seconds, not for the hours an upload may take. The
  request line and headers have their own timeout and size limit in the server
  (gateway.http.server).

Answers use the API's usual error shape.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import ScribeError, Unauthorized
from core.settings import Settings
from core.units import human_bytes, human_duration
from gateway.auth import api_key_of, principal_for_key
from gateway.http.errors import (
    BodyTooLarge,
    CrossSiteRequest,
    MisdirectedRequest,
    RequestTimeout,
    error_body,
    status_of,
)
from gateway.http.same_origin import cross_site_reason, misdirected_reason

# The routes whose body is a recording (multipart, streamed to storage under their own
# limits: max_upload_bytes and the key's).
UPLOAD_ROUTES = frozenset({("POST", "/v1/jobs"), ("POST", "/v1/speakers")})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class RequestGuard:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self._guard(scope, receive, send)
        except ScribeError as exc:
            await _answer(send, exc)

    async def _guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        path = scope["path"]
        settings = self.settings
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        server = scope.get("server")
        if reason := misdirected_reason(headers, settings, server[0] if server else None):
            raise MisdirectedRequest(reason)
        if reason := cross_site_reason(method, headers, settings):
            raise CrossSiteRequest(reason)
        if path.startswith("/v1/") or path == "/v1":
            await self._authenticate(scope, method, headers)
        upload = (method, path.rstrip("/")) in UPLOAD_ROUTES
        timed = _TimedReceive(
            receive,
            idle_s=settings.body_idle_timeout_s,
            total_s=settings.upload_timeout_s if upload else settings.request_body_timeout_s,
        )
        if upload:
            # Streamed by the route; every chunk still has to arrive in time.
            await self.app(scope, timed, send)
            return
        limit = settings.max_request_body_bytes
        length = _content_length(scope)
        if length is not None and length > limit:
            raise _too_large(limit)
        body = await timed.read_all(limit)
        await self.app(scope, _replay(body, receive), send)

    async def _authenticate(self, scope: Scope, method: str, headers: dict[str, str]) -> None:
        if not self.settings.auth_enabled:
            return
        token = api_key_of(headers)
        if token is not None:
            services = scope["app"].state.services
            principal = await principal_for_key(services.auth, token)
            scope.setdefault("state", {})["principal"] = principal
        elif method not in READ_METHODS:
            raise Unauthorized(
                "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
            )


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"the request body is larger than the {human_bytes(limit)} limit")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses it before the app sees it
    return None


class _TimedReceive:
    """`receive`, with a deadline per body chunk and for the whole body. Once the body is
    complete, calls pass straight through (a streaming response waits on `receive` for
    the client's disconnect, as long as it likes)."""

    def __init__(self, receive: Receive, *, idle_s: float, total_s: float) -> None:
        self._receive = receive
        self.idle_s = idle_s
        self.total_s = total_s
        self.deadline = time.monotonic() + total_s
        self.done = False

    async def __call__(self) -> Message:
        if self.done:
            return await self._receive()
        left = self.deadline - time.monotonic()
        wait = min(self.idle_s, left)
        try:
            message = await asyncio.wait_for(self._receive(), timeout=max(wait, 0.0))
        except TimeoutError:
            if left <= self.idle_s:
                raise RequestTimeout(
                    "the request body took too long to arrive; the limit is"
                    f" {human_duration(self.total_s)}"
                ) from None
            raise RequestTimeout(
                f"no data received for {self.idle_s:g} s; the request body was not sent"
                " completely (is Content-Length right?)"
            ) from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.done = True
        return message

    async def read_all(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives `body` once, then waits on the real one (for disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(send: Send, exc: ScribeError) -> None:
    status = status_of(exc)
    payload = json.dumps(error_body(exc.code, exc.message)).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close"),  # the body, or what is left of it, is not read
    ]
    start: dict[str, Any] = {"type": "http.response.start", "status": status, "headers": headers}
    try:
        await send(start)
        await send({"type": "http.response.body", "body": payload})
    except (OSError, RuntimeError):
        pass  # the response had started, or the client is gone: nothing more to say
