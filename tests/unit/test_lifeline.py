"""The lifeline ends what its process started, even where the end of file it waits for
never comes: a child forked without exec holds a copy of the pipe's write end. Real
processes (python, sleep), no Scribe server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from cli.embedded import process_alive

REPO = Path(__file__).resolve().parents[2]

# The owner: starts its lifeline, a `sleep` in a process group of its own that the
# lifeline is told to end, and a forked child that keeps the lifeline's pipe open (it
# holds every descriptor of its parent, the pipe's write end included). It prints the
# pids, then waits to be killed.
OWNER = textwrap.dedent(
    """
    import os, subprocess, sys, time
    from cli.lifeline import Lifeline
    sleeper = subprocess.Popen(["sleep", "300"], start_new_session=True)
    lifeline = Lifeline.of_this_process()
    lifeline.watch_group(sleeper.pid, 1.0)
    stray = os.fork()
    if stray == 0:
        time.sleep(300)
        os._exit(0)
    print(sleeper.pid, stray, lifeline.proc.pid, flush=True)
    time.sleep(300)
    """
)


def wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not process_alive(pid)


def test_the_group_is_ended_when_the_owner_dies_though_the_pipe_stays_open() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    assert owner.stdout is not None
    sleeper, stray, lifeline = (int(w) for w in owner.stdout.readline().split())
    try:
        time.sleep(0.5)  # the lifeline has read its orders
        assert process_alive(sleeper) and process_alive(stray) and process_alive(lifeline)
        owner.kill()
        owner.wait(10)
        # The stray child still holds the pipe: no end of file. The owner's death alone
        # must make the lifeline end the group, then exit.
        assert wait_dead(sleeper, 10), "the watched group outlived its owner"
        assert wait_dead(lifeline, 10), "the lifeline did not exit"
        assert process_alive(stray)  # not the lifeline's to end: it was not given it
    finally:
        for pid in (sleeper, stray, lifeline):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if owner.poll() is None:
            owner.kill()
            owner.wait(10)
        owner.stdout.close()
