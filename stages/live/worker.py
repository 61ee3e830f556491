"""The live worker: `python -m stages.live.worker` (or `scribe live-worker`).

It reads only the live meetings' queue (events/live.py), so uploads and meetings never wait
for each other, and follows at most `live.sessions_per_worker` meetings at once per
process (taskiq's `max_async_tasks`); it announces that room in Redis, and the gateway
refuses a meeting beyond every live worker's room with a 503. A meeting's message is
acknowledged when received: a meeting lasts longer than the broker's redelivery timeout,
and a meeting whose worker died is sent again by the gateway when its socket reconnects.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import os
import sys
from typing import Annotated

from taskiq import AsyncBroker, Context, TaskiqDepends, TaskiqEvents, TaskiqState

from core.process import unblock_stop_signals
from core.settings import Settings
from events.live import LIVE_TASK, REFRESH_S, LiveRoom, make_live_broker
from events.queue import make_broker
from stages.worker import PROCESSES_ENV, cpu_threads, die_with_parent, watch_parent

log = logging.getLogger("scribe.live")


async def follow_task(job_id: str, context: Annotated[Context, TaskiqDepends()]) -> str:
    from stages.live.session import follow

    state = context.state
    try:
        await follow(state.scribe, state.live_room, state.stage_broker, job_id)
    except Exception:
        log.exception("job %s: following the live meeting failed", job_id)
        raise
    return job_id


def create_broker() -> AsyncBroker:
    """Broker factory, imported by each live worker process."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see stages/worker.py
    settings = Settings()
    threads = cpu_threads(settings, os.environ)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    settings.models.cpu_threads = threads
    die_with_parent()
    if not settings.redis_url:
        raise SystemExit("SCRIBE_REDIS_URL is not set; `scribe serve` sets it in embedded mode")
    broker = make_live_broker(settings, settings.redis_url)
    broker.register_task(follow_task, task_name=LIVE_TASK)

    async def startup(state: TaskiqState) -> None:
        from stages.runtime import WorkerState

        scribe = await WorkerState.connect(settings, reaper=False)
        state.scribe = scribe
        state.live_room = LiveRoom(scribe.redis, settings.redis_prefix)
        stage_broker = make_broker(settings, settings.redis_url or "")
        await stage_broker.startup()
        state.stage_broker = stage_broker
        # Loaded before the first meeting, whatever models.preload says: a meeting's first
        # words must not wait for a model to load.
        await asyncio.to_thread(scribe.models.transcriber)
        with contextlib.suppress(Exception):  # no encoder: captions without speakers
            await asyncio.to_thread(scribe.models.encoder)

        async def announce() -> None:
            room: LiveRoom = state.live_room
            while True:
                try:
                    await room.announce_worker(scribe.name, settings.live.sessions_per_worker)
                except Exception as exc:  # Redis away: try again at the next beat
                    log.warning("could not announce the live worker: %s", exc)
                await asyncio.sleep(REFRESH_S)

        state.announcer = asyncio.create_task(announce(), name="live-announce")

    async def shutdown(state: TaskiqState) -> None:
        announcer = getattr(state, "announcer", None)
        if announcer is not None:
            announcer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await announcer
        scribe = getattr(state, "scribe", None)
        if scribe is not None:
            with contextlib.suppress(Exception):
                await state.live_room.forget_worker(scribe.name)
            await scribe.close()
        stage_broker = getattr(state, "stage_broker", None)
        if stage_broker is not None:
            await stage_broker.shutdown()

    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, startup)
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, shutdown)
    return broker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scribe live-worker",
        description="Run live workers: captions for live meetings (their own queue).",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--shutdown-timeout", type=float, default=10.0)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the process that started this one dies (set by `scribe serve`)",
    )
    args = parser.parse_args(argv)
    unblock_stop_signals()
    if args.exit_with_parent:
        watch_parent(args.shutdown_timeout)
    if "torch" in sys.modules:
        raise RuntimeError("torch is imported before the live worker sets the spawn method")
    multiprocessing.set_start_method("spawn", force=True)
    os.environ[PROCESSES_ENV] = str(args.workers)
    from taskiq.acks import AcknowledgeType
    from taskiq.cli.worker.args import WorkerArgs
    from taskiq.cli.worker.run import run_worker

    sessions = Settings().live.sessions_per_worker
    worker_args = WorkerArgs(
        broker="stages.live.worker:create_broker",
        modules=[],
        fs_discover=False,
        workers=args.workers,
        max_async_tasks=sessions,
        max_prefetch=0,
        ack_type=AcknowledgeType.WHEN_RECEIVED,
        shutdown_timeout=args.shutdown_timeout,
        log_level=args.log_level.upper(),
    )
    return run_worker(worker_args) or 0


if __name__ == "__main__":
    raise SystemExit(main())
