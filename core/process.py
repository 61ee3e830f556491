"""What every long-running Scribe process does first about the signals that stop it.

A thread's signal mask is inherited through fork and exec. A program that starts Scribe
from a thread that blocks SIGINT or SIGTERM (Python's multiprocessing resource tracker
and resource sharer do so around their own work; test runners, supervisors and shells
may too) hands the block on: the signal then stays pending forever, Ctrl-C and a service
manager's stop do nothing, and only SIGKILL ends the process, leaving what it started to
its lifeline. So `scribe` and the worker unblock them before anything else. Ignored
signals are left as they are: a shell ignores SIGINT for a background job on purpose.
"""

from __future__ import annotations

import signal

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


def unblock_stop_signals() -> None:
    """Let SIGINT, SIGTERM and SIGHUP reach this thread (the main one, where Python runs
    its handlers), whatever the parent's mask was."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
