"""Fixtures for the deployment tests: an isolated Scribe per test (own database, Redis
prefix, data directory and storage), started with the worker options under test, and an
S3 endpoint (`moto_server` on loopback).

Each system here runs its own worker(s) on its own queue prefix, so nothing crosses over
with the session-wide system of the integration tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cli.local import LocalSystem, WorkerProcess, free_port
from core.settings import Settings, StorageSettings
from tests.databases import create_database, database_url, drop_database
from tests.integration.conftest import ScribeAPI, SSEvent, log_tail
from tests.support import delete_redis_prefix

SHORT_AUDIO = Path("misc") / "english.wav"  # 2.7 s of speech: a whole job in seconds


@pytest.fixture(scope="session")
def short_audio(audio_dir: Path) -> Path:
    path = audio_dir / SHORT_AUDIO
    if not path.exists():
        pytest.fail(f"{path} is missing (tests/data/audio/manifest.tsv lists it)", pytrace=False)
    return path


MakeSettings = Callable[..., Settings]


@pytest.fixture
def isolated_settings(
    settings: Settings, pg_admin_dsn: str, tmp_path: Path
) -> Iterator[MakeSettings]:
    """A factory of settings with a database, Redis prefix and data directory of their own
    (removed afterwards); keyword arguments override fields (e.g. `storage=`)."""
    made: list[tuple[str, Settings]] = []

    def make(**update: Any) -> Settings:
        tag = uuid.uuid4().hex[:8]
        db_name = f"{settings.redis_prefix.replace('-', '_')}_deploy_{tag}"
        asyncio.run(create_database(pg_admin_dsn, db_name))
        data_dir = tmp_path / f"data-{tag}"
        data_dir.mkdir()
        values: dict[str, Any] = {
            "data_dir": data_dir,
            "database_url": database_url(pg_admin_dsn, db_name),
            "redis_prefix": f"{settings.redis_prefix}-deploy-{tag}",
            "storage": StorageSettings(protocol="file", root=str(data_dir / "artifacts")),
        }
        values.update(update)
        own = settings.model_copy(update=values)
        made.append((db_name, own))
        return own

    yield make
    for db_name, own in made:
        asyncio.run(drop_database(pg_admin_dsn, db_name))
        assert own.redis_url
        delete_redis_prefix(own.redis_url, own.redis_prefix)


def kill_group(proc: subprocess.Popen[bytes] | None) -> None:
    """End what is left of a worker's process group (it runs in a session of its own)."""
    if proc is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def running_system(
    settings: Settings, log: Path, *, extra_workers: int = 0, **options: Any
) -> Iterator[tuple[LocalSystem, ScribeAPI, list[WorkerProcess]]]:
    """Gateway + worker (LocalSystem) and `extra_workers` more worker entries on the same
    queue, as a second host would run them."""
    system = LocalSystem(settings, worker_log=log, shutdown_timeout=5, **options)
    extra: list[WorkerProcess] = []
    try:
        system.start()
        for _ in range(extra_workers):
            worker = WorkerProcess(system.settings, log_file=log, shutdown_timeout=5)
            worker.start()
            extra.append(worker)
        api = ScribeAPI(system, log)
        try:
            yield system, api, extra
        finally:
            api.close()
    except BaseException:
        print(f"worker log (tail):\n{log_tail(log)}")
        raise
    finally:
        procs = [w.proc for w in extra] + [system.worker.proc if system.worker else None]
        for worker in extra:
            worker.stop()
        system.stop()
        for proc in procs:
            kill_group(proc)


def started_per_stage(events: list[SSEvent]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in events:
        if event.type == "stage.started":
            stage = str(event.data["stage"])
            counts[stage] = counts.get(stage, 0) + 1
    return counts


def wait_all(api: ScribeAPI, job_ids: list[str], timeout_s: float) -> dict[str, list[SSEvent]]:
    """Follow each job to its end; the SSE history replays every event from job.queued on."""
    deadline = time.monotonic() + timeout_s
    out: dict[str, list[SSEvent]] = {}
    for job_id in job_ids:
        left = max(5.0, deadline - time.monotonic())
        out[job_id] = api.events(job_id, timeout_s=left)
    return out


def worker_children(pid: int) -> list[int]:
    """The live worker children of a `stages.worker` process: those started by
    multiprocessing's spawn (not its resource tracker, also a child), from /proc."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != pid or fields[0] == "Z":
                continue
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            kids.append(int(stat.parent.name))
    return kids


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


# ---------------------------------------------------------------- S3 (moto_server)


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    bucket: str
    options: dict[str, Any]


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("moto_server did not start in time")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3 endpoint on a free loopback port, for the whole session."""
    import moto.server  # noqa: F401  (the test extra; a missing one fails, never skips)
    import s3fs  # noqa: F401

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def s3_bucket(s3_server: str) -> S3Endpoint:
    """A fresh bucket on the endpoint, with the options Scribe's settings would carry."""
    import s3fs

    options = {"endpoint_url": s3_server, "key": "scribe-test", "secret": "scribe-test-secret"}
    bucket = f"scribe-{uuid.uuid4().hex[:12]}"
    fs = s3fs.S3FileSystem(**options)
    fs.mkdir(bucket)
    return S3Endpoint(url=s3_server, bucket=bucket, options=options)
