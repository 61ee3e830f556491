"""`scribe summary JOB` and `scribe ask QUESTION`: a meeting's summary, decisions and
action items, and an answer across your meetings, each citing the moments it comes from
(docs/intelligence.md)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from cli.client import ApiError
from cli.common import ServerOpt, connect, err, fail, out, plain, shown
from cli.search import clock

app = typer.Typer()


def _cites(citations: list[dict[str, Any]]) -> str:
    return ", ".join(f"{clock(c['start'])} {c['speaker']}" for c in citations)


@app.command()
def summary(
    job_id: Annotated[str, typer.Argument(help="The job's id")],
    as_json: Annotated[bool, typer.Option("--json", help="The API's JSON answer")] = False,
    server: ServerOpt = None,
) -> None:
    """The summary, decisions and action items of a meeting, each with the moments
    (time, speaker) it comes from."""
    try:
        with connect(server, worker=False) as client:
            body = client.summary(job_id)
    except ApiError as exc:
        raise fail(exc.message) from None
    if as_json:
        print(plain(json.dumps(body, ensure_ascii=False, indent=2)))
        return
    doc = body.get("summary")
    if doc is None:
        why = f": {body['error']}" if body.get("error") else ""
        raise fail(f"no summary yet (the summarize stage is {body['status']}{why})")
    if body["status"] != "succeeded":
        err.print(f"the summary is being made again ({body['status']}); this is the last one")
    out.print("[bold]Summary[/]")
    for p in doc["summary"]:
        out.print(f"- {shown(p['text'])}  [dim]({shown(_cites(p['citations']))})[/]")
    out.print("[bold]Decisions[/]")
    for p in doc["decisions"] or []:
        out.print(f"- {shown(p['text'])}  [dim]({shown(_cites(p['citations']))})[/]")
    if not doc["decisions"]:
        out.print("  (none said)")
    out.print("[bold]Action items[/]")
    for a in doc["action_items"]:
        who = a["owner"] or "no owner named"
        due = f", due {a['due']}" if a["due"] else ""
        line = f"- {shown(a['what'])} ({shown(who)}{shown(due)})"
        out.print(f"{line}  [dim]({shown(_cites(a['citations']))})[/]")
    if not doc["action_items"]:
        out.print("  (none said)")
    if doc["rejected"]:
        err.print(f"{len(doc['rejected'])} claim(s) left out: their citations failed the check")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="A question about your meetings")],
    job: Annotated[str | None, typer.Option("--job", help="Only this meeting (its id)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The checked answer as JSON")] = False,
    server: ServerOpt = None,
) -> None:
    """An answer from what your meetings say, citing the moments it rests on; says so
    when they do not support one."""
    answer: dict[str, Any] | None = None
    try:
        with connect(server, worker=False) as client:
            for kind, data in client.ask(question, job_id=job):
                if kind == "delta" and not as_json:
                    err.print(shown(str(data)), end="", style="dim")
                elif kind == "answer":
                    answer = data
                elif kind == "error":
                    raise fail(str(data.get("message")))
    except ApiError as exc:
        raise fail(exc.message) from None
    if answer is None:
        raise fail("the server ended the answer without sending it")
    if as_json:
        print(plain(json.dumps(answer, ensure_ascii=False, indent=2)))
        return
    err.print()
    out.print(shown(answer["answer"]))
    for n, c in enumerate(answer["citations"], start=1):
        where = c.get("file_name") or c["job_id"]
        out.print(
            f"  [{n}] {shown(where)} {clock(c['start'])} {shown(c['speaker'])}: {shown(c['text'])}"
        )
    if answer["dropped"]:
        err.print(f"{len(answer['dropped'])} sentence(s) left out: their citations failed")
