"""`scribe replay` and `scribe jobs`: run a stage of a job again, list recent jobs."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.client import ApiError
from cli.common import ServerOpt, connect, fail, out, plain, shown
from cli.run import follow_job

app = typer.Typer()


@app.command()
def replay(
    job_id: Annotated[str, typer.Argument(help="Job id")],
    stage: Annotated[
        str,
        typer.Argument(
            help="A stage of the graph the server runs (GET /v1/stages lists them; an unknown"
            " one is answered with the list)"
        ),
    ],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Parameter override key=value, e.g. num_speakers=3"),
    ] = None,
    server: ServerOpt = None,
) -> None:
    """Run STAGE of a job again (and the stages after it), optionally with new parameters."""
    params: dict[str, Any] = {}
    for item in set_ or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise fail(f"--set expects key=value, got {item!r}", 2)
        params[key.strip()] = _parse_value(value.strip())
    try:
        with connect(server) as client:
            client.replay(job_id, stage, params)
            final = follow_job(client, job_id)
            if final.type == "job.failed":
                raise fail(f"the {final.stage} stage failed: {final.message}")
            sys.stdout.write(plain(client.result(job_id, "txt")))
    except ApiError as exc:
        raise fail(exc.message) from None


def _parse_value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return None if text.lower() in ("none", "null", "") else text


@app.command()
def jobs(
    limit: Annotated[int, typer.Option(help="How many recent jobs")] = 20,
    server: ServerOpt = None,
) -> None:
    """List recent jobs."""
    try:
        with connect(server, worker=False) as client:
            rows = client.jobs(limit)
    except ApiError as exc:
        raise fail(exc.message) from None
    table = Table("id", "status", "file", "duration", "language", "created")
    for j in rows:
        dur = f"{j['duration_s']:.0f} s" if j.get("duration_s") else ""
        table.add_row(
            shown(j["id"]),
            shown(j["status"]),
            shown(j.get("filename") or ""),
            dur,
            shown(j.get("language") or ""),
            shown(j["created_at"][:19]),
        )
    out.print(table)
