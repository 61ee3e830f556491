"""In-process HTTP servers for the benchmarks: any ASGI app under uvicorn in a thread (the
same uvicorn settings GatewayThread uses), and an ASGI tap that timestamps requests."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

# Module level: FastAPI resolves the endpoint's (string) annotations in these globals.
from fastapi import FastAPI, Request, Response

REQUEST_ID_HEADER = b"x-bench-id"


class UvicornThread:
    """`app` under uvicorn in a daemon thread, configured like cli.local.GatewayThread."""

    def __init__(self, app: Any, host: str = "127.0.0.1") -> None:
        from cli.local import free_port

        self.app, self.host, self.port = app, host, free_port(host)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> UvicornThread:
        import uvicorn

        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="warning", lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True, name="bench-http")
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the benchmark HTTP server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)


def trivial_upload_app() -> Any:
    """The acceptance baseline: read the whole body, answer 202. No parsing, no storage."""
    app = FastAPI()

    @app.post("/v1/jobs")
    async def upload(request: Request) -> Response:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return Response(
            status_code=202, content=f'{{"bytes": {size}}}', media_type="application/json"
        )

    return app


class Tap:
    """ASGI middleware: per request (keyed by the X-Bench-Id header), the monotonic time the
    app received the last body message and the time it started the response."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.records: dict[str, dict[str, float]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = dict(scope.get("headers") or []).get(REQUEST_ID_HEADER)
        if rid is None:
            await self.app(scope, receive, send)
            return
        rec = self.records.setdefault(rid.decode(), {"app_start": time.monotonic()})

        async def tapped_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                rec["body_end"] = time.monotonic()
            return message

        async def tapped_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                rec["response_start"] = time.monotonic()
                rec["status"] = message["status"]
            await send(message)

        await self.app(scope, tapped_receive, tapped_send)


@contextlib.contextmanager
def tapped_gateway() -> Iterator[list[Tap]]:
    """While active, every gateway app that LocalSystem builds is wrapped in a Tap."""
    import gateway.app as gateway_app

    taps: list[Tap] = []
    original = gateway_app.create_app

    def create_app(*args: Any, **kwargs: Any) -> Any:
        app = original(*args, **kwargs)
        tap = Tap(app)
        taps.append(tap)
        return tap

    gateway_app.create_app = create_app
    try:
        yield taps
    finally:
        gateway_app.create_app = original


@contextlib.contextmanager
def uvicorn_http(impl: str) -> Iterator[None]:
    """While active, every uvicorn server started in this process uses `impl`: "h11" (the
    pure-Python parser on asyncio) or "httptools" (the C parser on uvloop). "auto" changes
    nothing: uvicorn then takes httptools and uvloop when they are installed."""
    import uvicorn

    if impl == "auto":
        yield
        return
    loop = "asyncio" if impl == "h11" else "uvloop"
    original = uvicorn.Config.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["http"], kwargs["loop"] = impl, loop
        original(self, *args, **kwargs)

    uvicorn.Config.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        uvicorn.Config.__init__ = original  # type: ignore[method-assign]
