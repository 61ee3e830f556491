"""`scribe run`: upload a recording, show each stage's progress, print the result."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from cli.client import ApiError, ScribeClient
from cli.common import ServerOpt, connect, err, fail, plain, readable_file, shown

app = typer.Typer()

FORMATS = ("txt", "json", "srt", "vtt")


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="Audio or video file", show_default=False)],
    fmt: Annotated[str, typer.Option("--format", "-f", help="txt, json, srt or vtt")] = "txt",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the result here (default: stdout)")
    ] = None,
    language: Annotated[
        str | None, typer.Option(help="Spoken language, e.g. fr (default: detect)")
    ] = None,
    num_speakers: Annotated[int | None, typer.Option(help="Exact number of speakers")] = None,
    min_speakers: Annotated[int | None, typer.Option(help="At least this many speakers")] = None,
    max_speakers: Annotated[int | None, typer.Option(help="At most this many speakers")] = None,
    server: ServerOpt = None,
) -> None:
    """Transcribe FILE: who said what, when. Shows each stage's progress."""
    readable_file(file)
    if fmt not in FORMATS:
        raise fail(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}", 2)
    params = {
        "language": language,
        "num_speakers": num_speakers,
        "min_speakers": min_speakers,
        "max_speakers": max_speakers,
    }
    started = time.monotonic()
    try:
        with connect(server) as client:
            job = _submit_with_progress(client, file, params)
            final = follow_job(client, job["id"])
            if final.type == "job.failed":
                raise fail(f"the {final.stage} stage failed: {final.message}")
            text = client.result(job["id"], fmt)
    except ApiError as exc:
        raise fail(exc.message) from None
    if output:
        output.write_text(text, encoding="utf-8")
        err.print(f"Wrote {shown(output)} ({time.monotonic() - started:.1f} s)")
    else:
        text = plain(text)  # the transcript's words reach the terminal as words only
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        err.print(f"[dim]job {shown(job['id'])} done in {time.monotonic() - started:.1f} s[/]")


def _submit_with_progress(
    client: ScribeClient, file: Path, params: dict[str, Any]
) -> dict[str, Any]:
    size = file.stat().st_size
    with Progress(
        TextColumn("upload    "),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("upload", total=size)
        return client.submit(file, params, on_bytes=lambda n: bar.advance(task, n))


class _ResultStageColumn(ProgressColumn):
    """`column` on the row of a stage the result waits for; `text` on the row of a stage
    that runs after the result, which has no progress to show here."""

    def __init__(self, column: ProgressColumn, text: str = "") -> None:
        super().__init__()
        self.column, self.text = column, text

    def render(self, task: Task) -> RenderableType:
        if task.fields.get("after_result"):
            return Text(self.text, style="dim")
        return self.column.render(task)


def follow_job(client: ScribeClient, job_id: str, console: Console = err) -> Any:
    """Show one progress bar per stage from the job's event stream; return the last event.

    The stream ends when the job succeeds or fails, which is before a stage that runs
    after the result (the graph's `result` flag is false: search indexing) has started: its
    row says "after the result" instead of a bar that would stay at 0 %."""
    with Progress(
        TextColumn("{task.description:<10}"),
        _ResultStageColumn(BarColumn(), "after the result"),
        _ResultStageColumn(TextColumn("{task.percentage:>3.0f}%")),
        _ResultStageColumn(TimeElapsedColumn()),
        TextColumn("{task.fields[note]}"),
        console=console,
    ) as bar:
        # One row per stage the job has, as the server's graph declares them.
        stages = [s["stage"] for s in client.job(job_id)["stages"]]
        after_result = {s["name"] for s in client.stages() if not s["result"]}
        tasks: dict[str, TaskID] = {
            s: bar.add_task(
                shown(s), total=1.0, start=False, note="", after_result=s in after_result
            )
            for s in stages
        }
        last = None
        for event in client.events(job_id):
            last = event
            t = tasks.get(event.stage or "")
            if t is None or event.stage in after_result:
                continue
            if event.type == "stage.started":
                bar.reset(t, total=1.0, note="")
                bar.start_task(t)
            elif event.type == "stage.progress":
                bar.update(t, completed=event.progress or 0.0, note=shown(event.step or ""))
            elif event.type == "stage.finished":
                note = "reused" if event.reused else ""
                bar.update(t, completed=1.0, note=note)
                bar.stop_task(t)
            elif event.type == "stage.failed":
                bar.update(t, note="[red]failed[/]")
                bar.stop_task(t)
        if last is None:
            raise fail("the event stream ended before the job finished")
        return last
