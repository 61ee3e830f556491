"""`scribe speakers enroll|list|delete`: the known voices, with their consent and expiry."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from cli.client import ApiError
from cli.common import ServerOpt, connect, err, fail, out, readable_file, shown

app = typer.Typer(help="Enroll, list and delete known voices.", no_args_is_help=True)

EXPIRES_HELP = (
    "Delete the voiceprint and its clips after this: a number of days (e.g. 90d) or an"
    " ISO 8601 date or time (e.g. 2027-01-31 or 2027-01-31T18:00+02:00; UTC when it has no"
    " offset, a date meaning 00:00 that day). Default: kept until deleted."
)
_DAYS = re.compile(r"(\d+)d", re.IGNORECASE)


def parse_expires(text: str, now: datetime | None = None) -> datetime:
    """`--expires` as a time zone-aware datetime in the future: `90d` is 90 days from now,
    anything else must be ISO 8601 (no offset: UTC). ValueError, with a message for a
    person, otherwise."""
    now = now or datetime.now(UTC)
    text = text.strip()
    days = _DAYS.fullmatch(text)
    if days:
        try:
            value = now + timedelta(days=int(days.group(1)))
        except OverflowError:
            raise ValueError(f"{text} is too far in the future") from None
    else:
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{text!r} is neither a number of days (e.g. 90d) nor an ISO 8601 date or"
                " time (e.g. 2027-01-31)"
            ) from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
    if value <= now:
        raise ValueError(f"{text} is not in the future")
    return value


def _expires_option(text: str) -> datetime:
    try:
        return parse_expires(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _when(iso: str | None, *, date_only: bool = False) -> str:
    """An API timestamp as `YYYY-MM-DD HH:MM UTC` (or the date alone); '' for None."""
    if not iso:
        return ""
    value = datetime.fromisoformat(iso)
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d" if date_only else "%Y-%m-%d %H:%M UTC")


def _consent(speaker: dict[str, Any]) -> str:
    """Who consented and when (and the note), as table text; 'not recorded' when nobody."""
    if not speaker.get("consent_by"):
        return "[dim]not recorded[/]"
    text = shown(speaker["consent_by"])
    if speaker.get("consent_at"):
        text += f" ({_when(speaker['consent_at'], date_only=True)})"
    if speaker.get("consent_note"):
        text += f"\n[dim]{shown(speaker['consent_note'])}[/]"
    return text


@app.command("enroll")
def speakers_enroll(
    name: Annotated[str, typer.Argument(help="The person's name")],
    clips: Annotated[
        list[Path],
        typer.Argument(help="Clean speech of that person only", show_default=False),
    ],
    consent_by: Annotated[
        str | None,
        typer.Option(
            "--consent-by",
            metavar="NAME",
            help="Who agreed to this voice being kept (usually the person themself);"
            " recorded with the time. Required by a server that requires consent"
            " (SCRIBE_VOICEPRINT_REQUIRE_CONSENT=true).",
        ),
    ] = None,
    consent_note: Annotated[
        str | None,
        typer.Option(
            "--consent-note",
            metavar="TEXT",
            help="A note on that consent, e.g. 'signed form 2026-03'. Needs --consent-by.",
        ),
    ] = None,
    expires: Annotated[
        datetime | None,
        typer.Option("--expires", metavar="DAYS|DATE", parser=_expires_option, help=EXPIRES_HELP),
    ] = None,
    server: ServerOpt = None,
) -> None:
    """Enroll NAME's voice from one or more clips, so later meetings name them.

    A voiceprint is biometric data: record who consented to it with --consent-by, and
    when it should be deleted with --expires, e.g.

        scribe speakers enroll Alice a1.wav a2.wav --consent-by Alice --expires 365d
    """
    for clip in clips:
        readable_file(clip)
    if consent_note and not (consent_by or "").strip():
        raise fail("--consent-note needs --consent-by (who consented)", 2)
    try:
        with connect(server) as client, err.status(f"Enrolling {shown(name)}…"):
            speaker = client.enroll(
                name, clips, consent_by=consent_by, consent_note=consent_note, expires_at=expires
            )
    except ApiError as exc:
        if exc.status == 422 and exc.message.startswith("consent_by:") and not consent_by:
            err.print(f"[bold red]error:[/] the server refused to enroll {shown(name)}:")
            err.print(shown(exc.message))
            err.print("Say who consented with --consent-by NAME (and optionally --consent-note).")
            raise typer.Exit(1) from None
        raise fail(exc.message) from None
    out.print(
        f"Enrolled {shown(speaker['name'])} as {shown(speaker['id'])}"
        f" ({shown(speaker['num_clips'])} clips)"
    )
    if speaker.get("consent_by"):
        out.print(f"Consent: {_consent(speaker)}")
    if speaker.get("expires_at"):
        out.print(f"Expires: {_when(speaker['expires_at'])}")


@app.command("list")
def speakers_list(server: ServerOpt = None) -> None:
    """List enrolled voices, with who consented to each and when it expires."""
    try:
        with connect(server, worker=False) as client:
            rows = client.speakers()
    except ApiError as exc:
        raise fail(exc.message) from None
    # Folded, never cut with an ellipsis: the id is what `speakers delete` needs.
    table = Table(
        *(
            Column(h, overflow="fold")
            for h in ("id", "name", "clips", "model", "enrolled", "consent", "expires")
        )
    )
    for s in rows:
        model = shown(s["model"]) + (" [yellow](stale)[/]" if s.get("stale") else "")
        table.add_row(
            shown(s["id"]),
            shown(s["name"]),
            shown(s["num_clips"]),
            model,
            _when(s["created_at"], date_only=True),
            _consent(s),
            _when(s.get("expires_at")) or "[dim]never[/]",
        )
    out.print(table)


@app.command("delete")
def speakers_delete(
    speaker_id: Annotated[str, typer.Argument(help="Id shown by `scribe speakers list`")],
    server: ServerOpt = None,
) -> None:
    """Delete an enrolled voice and its clips."""
    try:
        with connect(server, worker=False) as client:
            client.delete_speaker(speaker_id)
    except ApiError as exc:
        raise fail(exc.message) from None
    out.print(f"Deleted {shown(speaker_id)}")
