"""What a Scribe process started must not outlive it, however it ends.

`scribe serve` and `scribe run` start a worker (in a session of its own, so that a Ctrl-C
reaches them first and the worker is stopped in order) and embedded servers (daemons by
nature). Ended by SIGINT or SIGTERM, the process stops them itself; SIGKILL gives it no
chance. So the first time a process starts something, it also starts its lifeline: a small
process (`python -m cli.lifeline`) that reads a pipe from it and is told, one line at a
time, what to clean up. The pipe's end of file means the process has exited, whichever
way; the lifeline then ends the worker process groups it was given (SIGTERM, SIGKILL after
a grace period), stops the embedded servers of the data directories it was given when no
other live process uses them (cli/embedded.py), and exits. After a clean stop it finds
nothing left to do.

Protocol, one line each:  `group <pgid> <leader start time> <grace s>`,
`forget <pgid>`, `data-dir <path>` (paths are JSON strings).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, ClassVar

REPO = Path(__file__).resolve().parents[1]
# What a worker whose parent died gets to stop on its own, before SIGKILL.
GRACE_S = 1.0


class Lifeline:
    """This process's lifeline (one per process, started on first use)."""

    _current: ClassVar[Lifeline | None] = None
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO), os.environ.get("PYTHONPATH")])
        )}  # fmt: skip
        self.owner = os.getpid()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.lifeline"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            cwd=str(REPO),
            env=env,
            # Neither a Ctrl-C in the terminal nor a signal to our process group reaches
            # it: it must outlive us, if only by the time it takes to clean up.
            start_new_session=True,
        )
        self._lock = threading.Lock()

    @classmethod
    def of_this_process(cls) -> Lifeline:
        with cls._guard:
            current = cls._current
            if current is None or current.owner != os.getpid() or current.proc.poll() is not None:
                current = cls._current = Lifeline()
            return current

    def _send(self, line: str) -> None:
        stdin: IO[bytes] | None = self.proc.stdin
        assert stdin is not None
        with self._lock, contextlib.suppress(BrokenPipeError):
            stdin.write(line.encode() + b"\n")
            stdin.flush()

    def watch_group(self, pgid: int, grace_s: float) -> None:
        """End process group `pgid` (led by a child of ours) if we exit before it."""
        self._send(f"group {pgid} {_start_time(pgid)} {grace_s}")

    def forget_group(self, pgid: int) -> None:
        self._send(f"forget {pgid}")

    def watch_data_dir(self, data_dir: Path) -> None:
        """Stop the embedded servers of `data_dir` if we exit without leaving them and no
        other process uses them."""
        self._send(f"data-dir {json.dumps(str(data_dir))}")


def _start_time(pid: int) -> float:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.NoSuchProcess:
        return 0.0


def exit_on_termination() -> None:
    """SIGTERM and SIGHUP (what service managers and a closed terminal send) end this
    process the way Ctrl-C does, by an exception: `finally` blocks and context managers then
    stop what it started. Python's default is to die on the spot. A second signal while
    stopping is ignored (the lifeline covers a stop that never ends)."""

    def handler(signum: int, _frame: object) -> None:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGHUP, handler)


# ---------------------------------------------------------------- the lifeline process


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group (zombies excluded)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def end_group(pgid: int, started: float, grace_s: float) -> None:
    """SIGTERM, then SIGKILL after `grace_s`, to a group that is still the one we were
    given: a pid is not reused while a process group of that id has members, so the group
    is ours unless its leader's pid now names a process started later."""
    leader_now = _start_time(pgid) if Path(f"/proc/{pgid}").exists() else None
    if leader_now and started and abs(leader_now - started) > 0.05:
        return  # another process with that pid leads its own group
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not group_members(pgid):
            return


# How often the lifeline looks whether its process is still its parent.
OWNER_POLL_S = 0.5


def run(stream: IO[bytes], parent: int) -> None:
    groups: dict[int, tuple[float, float]] = {}
    data_dirs: list[Path] = []
    lock = threading.Lock()
    ended = threading.Event()

    def read() -> None:
        for raw in stream:
            kind, _, rest = raw.decode().strip().partition(" ")
            with lock:
                if kind == "group":
                    words = rest.split()
                    groups[int(words[0])] = (float(words[1]), float(words[2]))
                elif kind == "forget":
                    groups.pop(int(rest), None)
                elif kind == "data-dir":
                    path = Path(json.loads(rest))
                    if path not in data_dirs:
                        data_dirs.append(path)
        ended.set()

    threading.Thread(target=read, name="lifeline pipe", daemon=True).start()
    # End of file: our process has closed its end of the pipe, which it does by exiting.
    # Another process that holds a copy of that end (a child forked without exec) would
    # keep the end of file from coming, so the parent is watched too: once it has exited,
    # this process is handed to another and its parent id changes.
    while not ended.wait(OWNER_POLL_S):
        if os.getppid() != parent:
            ended.wait(OWNER_POLL_S)  # what it wrote before it exited is read first
            break
    with lock:
        groups, data_dirs = dict(groups), list(data_dirs)
    # Everything is ended at once; a worker's grace is short, its parent is gone.
    work = [
        threading.Thread(target=end_group, args=(pgid, started, min(grace, GRACE_S)))
        for pgid, (started, grace) in groups.items()
    ]
    if data_dirs:
        from cli import embedded

        work += [
            threading.Thread(target=embedded.reap, args=(path,), kwargs={"gone_pid": parent})
            for path in data_dirs
        ]
    for thread in work:
        thread.start()
    for thread in work:
        thread.join()


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    run(sys.stdin.buffer, os.getppid())


if __name__ == "__main__":
    main()
