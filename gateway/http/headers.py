"""The headers every answer carries, whatever route (or error) made it.

- `X-Content-Type-Options: nosniff`: a browser takes a JSON answer or an uploaded file for
  what its Content-Type says, never for a script or a page;
- `X-Frame-Options: DENY` and CSP `frame-ancestors 'none'`: no other site shows these pages
  in a frame (clickjacking);
- `Referrer-Policy: no-referrer`: a link followed from the page does not tell where from;
- `Content-Security-Policy`: answers that are not a page (the API's JSON, assets) get
  `default-src 'none'`, so nothing they hold can run; the page (gateway.http.page) and the
  docs (gateway.http.docs) set their own, which allow only this origin's files and their own
  inline scripts by hash (`csp_for`).

`SecurityHeaders` is a pure ASGI middleware, outside every other but Starlette's error
middleware, whose 500 answer (gateway.http.errors) adds the same headers itself.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from html.parser import HTMLParser

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NO_CONTENT_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
DEFAULT_HEADERS = (*SECURITY_HEADERS, (b"content-security-policy", NO_CONTENT_POLICY.encode()))


def header_dict() -> dict[str, str]:
    """DEFAULT_HEADERS for a Starlette Response's `headers=`."""
    return {k.decode(): v.decode() for k, v in DEFAULT_HEADERS}


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in DEFAULT_HEADERS if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _InlineScripts(HTMLParser):
    """The text of every <script> without a `src` (what a browser runs inline)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.scripts: list[str] = []
        self._current: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._current = None if any(k == "src" for k, _ in attrs) else []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            if self._current is not None:
                self.scripts.append("".join(self._current))
            self._current = None


def inline_scripts(html: str) -> list[str]:
    # A browser reads CR LF and CR as LF before it sees a script, and hashes what it saw.
    parser = _InlineScripts()
    parser.feed(html.replace("\r\n", "\n").replace("\r", "\n"))
    parser.close()
    return parser.scripts


def script_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def csp_for(html: str, *, extra: Iterable[str] = ()) -> str:
    """A policy for one HTML document: this origin's files only, no plugin, no frame
    around it, and of inline scripts exactly those of `html` (by their hashes).
    `extra` adds directives (e.g. "img-src 'self' data:")."""
    hashes = sorted({script_hash(s) for s in inline_scripts(html)})
    directives = [
        "default-src 'self'",
        " ".join(["script-src 'self'", *hashes]),
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        *extra,
    ]
    return "; ".join(directives)
