"""The gateway's HTTP server: uvicorn, with the limits uvicorn leaves to its user.

uvicorn bounds idle keep-alive connections (`timeout_keep_alive`) and the number of
connections (`limit_concurrency`, answered with 503), but neither the time a client may
take to send a request's line and headers nor their size: a client that sends half a
header and waits holds its connection forever, and one that sends a megabyte of header
has httptools grow it, by concatenation, as long as it sends. `HeaderTimeoutProtocol`
closes such a connection with a 408 after `header_timeout_s`, and with a 431 once more
than `max_header_bytes` came without the headers being complete (counted in whole reads,
so what is held is the limit plus one read at most). Body timeouts and limits are the
app's (gateway.http.guard).

Every place that serves the gateway (`scribe gateway`, `scribe serve`, the tests) builds
its server here, so all run with the same limits, and with secrets kept out of their
logs (gateway.http.log_redaction).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from core.settings import Settings
from core.units import human_bytes
from gateway.http import log_redaction
from gateway.http.errors import error_body
from gateway.http.headers import DEFAULT_HEADERS


def raw_answer(status: str, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 answer in the API's error shape, that closes the connection."""
    body = json.dumps(error_body(code, message)).encode()
    extra = "".join(f"{k.decode()}: {v.decode()}\r\n" for k, v in DEFAULT_HEADERS)
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}"
        f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


# Written as it is to a connection whose headers never completed (no ASGI app has it yet).
_408 = raw_answer(
    "408 Request Timeout", "request_timeout", "the request headers took too long to arrive"
)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request line and headers
    are not complete `header_timeout_s` after the connection (or the request) began, or
    hold more than `max_header_bytes`."""

    header_timeout_s: float = 10.0
    max_header_bytes: int = 64 * 1024
    _header_timer: asyncio.TimerHandle | None = None
    # Between a request's first byte (or the end of the one before) and its last header.
    _reading_head = True
    _head_bytes = 0
    _heads_done = 0  # request heads completed on this connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        counting, heads = self._reading_head, self._heads_done
        super().data_received(data)
        # A head completed in this read (a whole small request may fit in one, and leave
        # the next request's head to be read), or the body is being read: not a long head.
        if not (counting and self._reading_head) or self._heads_done != heads:
            return
        self._head_bytes += len(data)
        if self._head_bytes > self.max_header_bytes and not self.transport.is_closing():
            self._disarm()
            self.transport.write(_answer_431(self.max_header_bytes))
            self.transport.close()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head, self._head_bytes = True, 0  # the next request's head comes next

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        self._reading_head, self._head_bytes = False, 0
        self._heads_done += 1
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


def _answer_431(limit: int) -> bytes:
    return raw_answer(
        "431 Request Header Fields Too Large",
        "headers_too_large",
        f"the request line and headers are larger than the {human_bytes(limit)} limit",
    )


def protocol_for(settings: Settings) -> type[HeaderTimeoutProtocol]:
    return type(
        "HeaderTimeoutProtocol",
        (HeaderTimeoutProtocol,),
        {
            "header_timeout_s": settings.header_timeout_s,
            "max_header_bytes": settings.max_header_bytes,
        },
    )


def server_config(
    app: FastAPI, settings: Settings, *, host: str, port: int, **options: Any
) -> uvicorn.Config:
    """The uvicorn configuration every gateway runs with."""
    log_redaction.install()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_for(settings),
        limit_concurrency=settings.max_connections,
        # Live meetings' audio socket (gateway/services/live.py checks each chunk's size
        # with a message; this bound only stops a runaway frame). The sans-I/O protocol:
        # the other one is deprecated by websockets.
        ws="websockets-sansio",
        ws_max_size=max(1 << 20, 4 * settings.live.chunk_max_bytes),
        **options,
    )
