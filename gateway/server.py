"""The gateway's HTTP server: uvicorn, with the limits uvicorn leaves to its user.

uvicorn bounds idle keep-alive connections (`timeout_keep_alive`) and the number of
connections (`limit_concurrency`, answered with 503), but not the time a client may take
to send a request's line and headers: a client that sends half a header and waits holds
its connection forever. `HeaderTimeoutProtocol` closes such a connection with a 408 after
`header_timeout_s`. Body timeouts and limits are the app's (gateway.guard).

Every place that serves the gateway (`scribe gateway`, `scribe serve`, the tests) builds
its server here, so all run with the same limits.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from core.settings import Settings
from gateway.errors import error_body


def _answer_408() -> bytes:
    body = json.dumps(
        error_body("request_timeout", "the request headers took too long to arrive")
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


# Written as it is to a connection whose headers never completed (no ASGI app has it yet).
_408 = _answer_408()


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request line and headers
    are not complete `header_timeout_s` after the connection (or the request) began."""

    header_timeout_s: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.write(_408)
            self.transport.close()


def protocol_for(settings: Settings) -> type[HeaderTimeoutProtocol]:
    return type(
        "HeaderTimeoutProtocol",
        (HeaderTimeoutProtocol,),
        {"header_timeout_s": settings.header_timeout_s},
    )


def server_config(
    app: FastAPI, settings: Settings, *, host: str, port: int, **options: Any
) -> uvicorn.Config:
    """The uvicorn configuration every gateway runs with."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_for(settings),
        limit_concurrency=settings.max_connections,
        **options,
    )
