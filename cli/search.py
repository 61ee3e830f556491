"""`scribe search` and `scribe reindex`: the moments across your meetings that match a
query, and rebuilding the search index (docs/architecture.md, "Search")."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.client import ApiError, ScribeClient
from cli.common import ServerOpt, connect, err, fail, out, plain, shown

app = typer.Typer()


def clock(seconds: float) -> str:
    """mm:ss (h:mm:ss past an hour)."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def hits_table(hits: list[dict[str, Any]]) -> Table:
    table = Table("meeting", "time", "speaker", "text", "score")
    for h in hits:
        table.add_row(
            shown(h.get("file_name") or h["job_id"]),
            clock(h["start"]),
            shown(h["speaker"]),
            shown(h["text"]),
            f"{h['score']:.3f}",
        )
    return table


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in any language")],
    job: Annotated[str | None, typer.Option("--job", help="Only this job (its id)")] = None,
    speaker: Annotated[
        str | None, typer.Option("--speaker", help="Only this speaker (name or label, S1)")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=50, help="How many hits")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="The API's JSON answer")] = False,
    server: ServerOpt = None,
) -> None:
    """The moments across your meetings nearest in meaning to QUERY."""
    try:
        with connect(server, worker=False) as client:
            found = client.search(query, job_id=job, speaker=speaker, limit=limit)
    except ApiError as exc:
        raise fail(exc.message) from None
    if as_json:
        # JSON escapes C0 controls; C1 ones (8-bit escapes) it leaves as they are.
        print(plain(json.dumps(found, ensure_ascii=False, indent=2)))
        return
    if not found["hits"]:
        err.print(f"nothing found for {shown(repr(query))} (index: {shown(found['model'])})")
        return
    out.print(hits_table(found["hits"]))


@app.command()
def reindex(
    wait_s: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for the indexing (0: do not)")
    ] = 600.0,
    server: ServerOpt = None,
) -> None:
    """Embed every succeeded job again for search (jobs made before search existed, or
    after a change of embedding model)."""
    try:
        with connect(server) as client:
            sent = client.reindex()
            err.print(f"{sent['jobs']} job(s) sent for indexing")
            if wait_s > 0:
                _wait(client, sent["job_ids"], wait_s)
    except ApiError as exc:
        raise fail(exc.message) from None


def _wait(client: ScribeClient, job_ids: list[str], wait_s: float) -> None:
    """Until every job's stages after the result are done (or `wait_s` passes)."""
    deadline = time.monotonic() + wait_s
    left = set(job_ids)
    failed: list[str] = []
    with err.status("Indexing…"):
        while left and time.monotonic() < deadline:
            for job_id in sorted(left):
                stages = client.job(job_id)["stages"]
                if all(s["status"] in ("succeeded", "failed") for s in stages):
                    left.discard(job_id)
                    failed += [f"{job_id}: {s['error']}" for s in stages if s["status"] == "failed"]
            if left:
                time.sleep(0.5)
    for line in failed:
        err.print(f"[red]failed:[/] {shown(line)}")
    if left:
        err.print(f"{len(left)} job(s) still indexing; they finish in the background")
    elif not failed:
        err.print("done: the search index follows within a few seconds")
