"""Worker entry point: `python -m stages.worker` (or `scribe worker`).

Safety rules from the design: the `spawn` start method is set before anything imports
torch; one task at a time per process (a GPU runs one model call at a time); workers are
recycled after N tasks; tasks are registered explicitly (no autodiscovery).

Several GPUs on one host: `--workers N` with `SCRIBE_MODELS__DEVICE=cuda` and
`SCRIBE_MODELS__GPUS=[0,1,...]`. taskiq's process manager names its children `worker-<i>`
(a recycled child keeps its name), and the broker factory below, which runs first in each
child, sets `CUDA_VISIBLE_DEVICES` to `gpus[i % len(gpus)]` before torch is imported.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import MutableMapping

from taskiq import AsyncBroker, TaskiqEvents, TaskiqState

from core.process import unblock_stop_signals
from core.settings import Settings
from events.queue import make_broker

log = logging.getLogger("scribe.worker")


def worker_index(process_name: str) -> int:
    """The index taskiq gave this child process (`worker-<i>`); 0 outside taskiq."""
    prefix, _, number = process_name.rpartition("-")
    return int(number) if prefix == "worker" and number.isdigit() else 0


def pin_gpu(settings: Settings, index: int, environ: MutableMapping[str, str]) -> str | None:
    """Restrict worker `index` to one GPU of `settings.models.gpus` (round robin).

    Must run before torch or CTranslate2 initialise CUDA; returns the GPU, or None when
    nothing is pinned (CPU, or no GPU list: every process sees every GPU)."""
    models = settings.models
    if models.device == "cpu" or not models.gpus:
        return None
    gpu = str(models.gpus[index % len(models.gpus)])
    environ["CUDA_VISIBLE_DEVICES"] = gpu
    return gpu


# Set by `run` for the processes it starts: how many there are on this host.
PROCESSES_ENV = "SCRIBE_WORKER_PROCESSES"


def cpu_threads(settings: Settings, environ: MutableMapping[str, str]) -> int:
    """The compute threads of one worker process: the setting, or this host's cores (those
    the process may run on) shared among the worker processes `run` started."""
    if settings.models.cpu_threads:
        return settings.models.cpu_threads
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    processes = max(1, int(environ.get(PROCESSES_ENV, "1") or 1))
    return max(1, (cores or 1) // processes)


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """In a process taskiq's process manager started (the one that holds the models and
    runs stages): have the kernel send `sig` when the manager dies. It stops its children
    when it is stopped; killed, it cannot, and a child left alone would go on computing.
    Linux only (prctl PR_SET_PDEATHSIG); nothing elsewhere or outside a taskiq child."""
    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    if libc.prctl(pr_set_pdeathsig, sig, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
        return
    if os.getppid() != parent.pid:  # it died before the call above
        os.kill(os.getpid(), sig)


def create_broker() -> AsyncBroker:
    """Broker factory, imported by each worker process (settings read once, here)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    # OpenMP threads that wait for work spin by default; beside a second worker process (a
    # job's diarize and transcribe run at once) or any busy neighbour on the same cores,
    # that spinning takes the CPU both need (bench/README, "Stage graph"). Read when torch
    # and CTranslate2 load their OpenMP runtime, which happens after this; an explicit
    # setting in the environment wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    settings = Settings()
    # Read by torch and CTranslate2 when they load, like the wait policy; one for every
    # process of the worker, or they take the host's every core each.
    # (An OMP_NUM_THREADS of the environment wins for torch.)
    threads = cpu_threads(settings, os.environ)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    settings.models.cpu_threads = threads
    die_with_parent()
    index = worker_index(multiprocessing.current_process().name)
    if "torch" in sys.modules:  # a GPU pin or a fork-safe start would come too late
        log.warning("torch was imported before the worker's broker factory ran")
    gpu = pin_gpu(settings, index, os.environ)
    if gpu is not None:
        log.info("worker-%d uses GPU %s (CUDA_VISIBLE_DEVICES)", index, gpu)
    if not settings.redis_url:
        raise SystemExit("SCRIBE_REDIS_URL is not set; `scribe serve` sets it in embedded mode")
    broker = make_broker(settings, settings.redis_url)

    from core.graph import load_graph
    from stages.runtime import WorkerState
    from stages.tasks import register_tasks

    register_tasks(broker, load_graph(settings.stage_graph))

    async def startup(state: TaskiqState) -> None:
        state.scribe = await WorkerState.connect(settings)
        if settings.models.preload:
            import asyncio

            models = state.scribe.models
            await asyncio.to_thread(models.transcriber)
            await asyncio.to_thread(models.diarizer)
            await asyncio.to_thread(models.encoder)
            await asyncio.to_thread(models.text_embedder)
            log.info("models loaded: %s", models.load_times)

    async def shutdown(state: TaskiqState) -> None:
        scribe = getattr(state, "scribe", None)
        if scribe is not None:
            await scribe.close()

    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, startup)
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, shutdown)
    return broker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scribe worker", description="Run stage workers that consume the Scribe queue."
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes (one per GPU)")
    parser.add_argument(
        "--max-tasks-per-child",
        type=int,
        default=200,
        help="recycle a worker process after this many tasks (frees leaked memory)",
    )
    parser.add_argument("--shutdown-timeout", type=float, default=30.0)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the process that started this one dies (set by `scribe serve` and"
        " `scribe run`, whose worker lives in a session of its own)",
    )
    args = parser.parse_args(argv)
    unblock_stop_signals()  # SIGTERM is how it is told to stop (core/process.py)
    if args.exit_with_parent:
        watch_parent(args.shutdown_timeout)
    return run(
        workers=args.workers,
        max_tasks_per_child=args.max_tasks_per_child,
        shutdown_timeout=args.shutdown_timeout,
        log_level=args.log_level,
    )


def watch_parent(shutdown_timeout: float, interval_s: float = 1.0) -> None:
    """When the parent dies (this process is handed to another), stop as on SIGTERM, and
    end the whole process group if that has not happened within the shutdown timeout.

    The worker runs in a session of its own so that a Ctrl-C reaches the parent first; a
    parent killed with SIGKILL can then not stop it, and it would go on consuming the queue.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        log.warning("the process that started this worker is gone; stopping")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(shutdown_timeout + 10)
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="parent watch", daemon=True).start()


def run(
    *,
    workers: int = 1,
    max_tasks_per_child: int | None = 200,
    shutdown_timeout: float = 30.0,
    log_level: str = "INFO",
) -> int:
    # Before any import of torch: CUDA cannot survive a fork.
    if "torch" in sys.modules:
        raise RuntimeError("torch is imported before the worker sets the spawn start method")
    multiprocessing.set_start_method("spawn", force=True)
    os.environ[PROCESSES_ENV] = str(workers)  # inherited by the processes started below
    from taskiq.cli.worker.args import WorkerArgs
    from taskiq.cli.worker.run import run_worker

    args = WorkerArgs(
        broker="stages.worker:create_broker",
        modules=[],
        fs_discover=False,
        workers=workers,
        max_async_tasks=1,
        max_prefetch=0,
        max_tasks_per_child=max_tasks_per_child,
        shutdown_timeout=shutdown_timeout,
        log_level=log_level.upper(),  # type: ignore[arg-type]
    )
    return run_worker(args) or 0


if __name__ == "__main__":
    raise SystemExit(main())
