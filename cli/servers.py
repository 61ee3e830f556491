"""`scribe serve`, `scribe gateway`, `scribe worker`: run the system, or one part of it."""

from __future__ import annotations

import logging
import time
from typing import Annotated

import typer

from cli.common import err, fail, shown
from core.settings import Settings

app = typer.Typer()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    live: Annotated[
        bool, typer.Option(help="Also run a live worker: captions for live meetings")
    ] = True,
) -> None:
    """Run the gateway, a worker and a live worker (and embedded PostgreSQL/Redis when no
    URL is set)."""
    from cli.local import STOP_GRACE_S, LocalSystem

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    system = LocalSystem(
        settings,
        host=host,
        port=port,
        workers=workers,
        worker_log=settings.data_dir / "worker.log",
        shutdown_timeout=STOP_GRACE_S,
        live_worker=live,
    )
    with err.status("Starting Scribe…"):
        system.start()
    url, data = shown(system.url), settings.data_dir
    err.print(f"Scribe is running at [bold]{url}[/]  (API docs: {url}/docs)")
    err.print(f"Data in {shown(data)}; worker log in {shown(data / 'worker.log')}")
    err.print("Press Ctrl-C to stop.")
    try:
        while True:
            time.sleep(1)
            if system.worker is not None and not system.worker.alive():
                err.print("[red]The worker stopped; see the worker log.[/]")
                break
    except KeyboardInterrupt:  # Ctrl-C; SIGTERM and SIGHUP end us by SystemExit (cli.main)
        pass
    finally:
        with err.status("Stopping…"):
            system.stop()


@app.command()
def gateway(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
) -> None:
    """Run only the HTTP gateway (production: needs SCRIBE_DATABASE_URL and SCRIBE_REDIS_URL)."""
    import uvicorn

    from gateway.app import create_app
    from gateway.http.server import server_config

    settings = Settings()
    if not settings.database_url or not settings.redis_url:
        raise fail("set SCRIBE_DATABASE_URL and SCRIBE_REDIS_URL (or use `scribe serve`)", 2)
    logging.basicConfig(level=logging.INFO)
    config = server_config(create_app(settings), settings, host=host, port=port,
                           proxy_headers=True)  # fmt: skip
    uvicorn.Server(config).run()


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(ctx: typer.Context) -> None:
    """Run only stage workers (production). Options: see `scribe worker --help`."""
    from stages.worker import main as worker_main

    raise typer.Exit(worker_main(ctx.args))


@app.command(
    "live-worker", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def live_worker(ctx: typer.Context) -> None:
    """Run only live workers (production): captions for live meetings, on their own queue.
    Options: see `scribe live-worker --help`."""
    from stages.live.worker import main as live_main

    raise typer.Exit(live_main(ctx.args))
