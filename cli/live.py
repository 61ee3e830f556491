"""`scribe live FILE`: stream a recording to a live meeting at real-time pace (or N times
faster) and print the captions as they come, then the transcript of the whole recording."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from cli import common
from cli.common import ServerOpt, connect, err, fail, plain, readable_file
from core.events import JobEvent

app = typer.Typer()


def _printer() -> Callable[[JobEvent, float], None]:
    state: dict[str, str | None] = {"speaker": None}

    def on_event(event: JobEvent, _at: float) -> None:
        caption = event.caption
        if event.type == "live.ended":
            err.print(f"[dim]meeting ended ({event.message}); transcribing the recording…[/]")
        if event.type != "live.caption" or caption is None or not caption.final:
            return
        who = caption.name or caption.speaker or "?"
        text = " ".join(w.word for w in caption.final)
        if who != state["speaker"]:
            sys.stdout.write(f"\n[{caption.final[0].start:7.1f}s] {who}: ")
            state["speaker"] = who
        sys.stdout.write(text + " ")
        sys.stdout.flush()

    return on_event


@app.command()
def live(
    file: Annotated[Path, typer.Argument(help="A recording to play as a live meeting")],
    speed: Annotated[
        float, typer.Option(help="Times real time (1: as spoken; 4: four times faster)")
    ] = 1.0,
    language: Annotated[str | None, typer.Option(help="Language code, e.g. en, fr")] = None,
    server: ServerOpt = None,
) -> None:
    """Stream FILE to a live meeting and print the captions as they come; at the end, the
    whole recording's transcript."""
    from cli.live_stream import LiveRefused, LiveStreamer, read_pcm, run_live

    if speed <= 0:
        raise fail("--speed must be above 0", 2)
    try:
        pcm = read_pcm(str(readable_file(file)))
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    with connect(server, live=True) as client:
        streamer = LiveStreamer(
            client.base_url,
            api_key=common.current_api_key() if server else None,
            speed=speed,
            language=language,
            on_event=_printer(),
        )

        async def go() -> str:
            try:
                outcome, _ = await run_live(streamer, pcm)
            finally:
                await streamer.aclose()
            err.print(f"\n[dim]{outcome.stored_s:.1f} s stored; job {outcome.job_id}[/]")
            return outcome.job_id

        try:
            job_id = asyncio.run(go())
        except LiveRefused as exc:
            raise fail(exc.message) from None
        sys.stdout.write("\n" + plain(client.result(job_id, "txt")))
