"""`scribe`: run a meeting through the pipeline, serve the API, manage voiceprints,
calibrate speaker identification.

Client commands talk to `--server URL` (or SCRIBE_URL) when given; otherwise they start
the whole system on this machine (embedded PostgreSQL and Redis when no URL is set,
a worker process and the gateway) for the duration of the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Column, Table

from cli.client import ApiError, ScribeClient
from core.artifacts import STAGES
from core.settings import Settings

if TYPE_CHECKING:
    import asyncpg

    from storage.auth import ApiKey, AuthStore

T = TypeVar("T")

app = typer.Typer(
    help="Scribe: who said what, when. Speaker-attributed, word-timed meeting transcripts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
speakers_app = typer.Typer(help="Enroll, list and delete known voices.", no_args_is_help=True)
app.add_typer(speakers_app, name="speakers")
keys_app = typer.Typer(
    help="API keys (stored hashed; talks to the database directly).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")

err = Console(stderr=True)
out = Console()

ServerOpt = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="SCRIBE_URL",
        help="URL of a running Scribe (e.g. http://scribe.lan). Default: run locally.",
    ),
]
FORMATS = ("txt", "json", "srt", "vtt")

# Set by the app callback from --api-key / SCRIBE_API_KEY: the key for `--server`.
_api_key: str | None = None


@app.callback()
def _options(
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="SCRIBE_API_KEY",
            help="API key for a server with auth on (see `scribe keys create`).",
        ),
    ] = None,
) -> None:
    global _api_key
    _api_key = api_key


@contextlib.contextmanager
def connect(server: str | None, *, worker: bool = True) -> Iterator[ScribeClient]:
    """A client of `server`, or of a whole system started here for this command."""
    if server:
        with ScribeClient(server, api_key=_api_key) as client:
            yield client
        return
    from cli.local import LocalSystem

    settings = Settings()
    if settings.auth == "auto":
        # A gateway of this command alone, on loopback, by someone who holds the database
        # URL (and so every row already): no key to ask for.
        settings = settings.model_copy(update={"auth": "off"})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log_file = settings.data_dir / "worker.log"
    with err.status("Starting Scribe locally (database, queue, worker)…"):
        system = LocalSystem(settings, worker=worker, worker_log=log_file).start()
    try:
        with ScribeClient(system.url) as client:
            yield client
    finally:
        with err.status("Stopping…"):
            system.stop()


def fail(message: str, code: int = 1) -> typer.Exit:
    # soft_wrap: one line whatever the terminal's width, so a path is never broken in two.
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def readable_file(path: Path) -> Path:
    """`path` when it is a file this process can read, else a one-line error naming it.

    Checked here rather than by typer's `exists=True`, whose boxed message is wrapped at the
    terminal's width."""
    if not path.exists():
        raise fail(f"{path} does not exist", 2)
    if path.is_dir():
        raise fail(f"{path} is a folder; give a file", 2)
    if not os.access(path, os.R_OK):
        raise fail(f"{path} cannot be read (permission denied)", 2)
    return path


# ---------------------------------------------------------------- run


@app.command()
def run(
    file: Annotated[
        Path, typer.Argument(help="Audio or video file", show_default=False)
    ],
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
            final = _follow(client, job["id"])
            if final.type == "job.failed":
                raise fail(f"the {final.stage} stage failed: {final.message}")
            text = client.result(job["id"], fmt)
    except ApiError as exc:
        raise fail(exc.message) from None
    if output:
        output.write_text(text, encoding="utf-8")
        err.print(f"Wrote {output} ({time.monotonic() - started:.1f} s)")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        err.print(f"[dim]job {job['id']} done in {time.monotonic() - started:.1f} s[/]")


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


def _follow(client: ScribeClient, job_id: str) -> Any:
    """Show one progress bar per stage from the job's event stream; return the last event."""
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}"),
        console=err,
    ) as bar:
        tasks: dict[str, TaskID] = {
            s: bar.add_task(s, total=1.0, start=False, note="") for s in STAGES
        }
        last = None
        for event in client.events(job_id):
            last = event
            t = tasks.get(event.stage or "")
            if event.type == "stage.started" and t is not None:
                bar.reset(t, total=1.0, note="")
                bar.start_task(t)
            elif event.type == "stage.progress" and t is not None:
                bar.update(t, completed=event.progress or 0.0, note=event.step or "")
            elif event.type == "stage.finished" and t is not None:
                note = "reused" if event.reused else ""
                bar.update(t, completed=1.0, note=note)
                bar.stop_task(t)
            elif event.type == "stage.failed" and t is not None:
                bar.update(t, note="[red]failed[/]")
                bar.stop_task(t)
        if last is None:
            raise fail("the event stream ended before the job finished")
        return last


# ---------------------------------------------------------------- servers


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """Run the gateway and a worker (and embedded PostgreSQL/Redis when no URL is set)."""
    from cli.local import LocalSystem

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    system = LocalSystem(
        settings,
        host=host,
        port=port,
        workers=workers,
        worker_log=settings.data_dir / "worker.log",
    )
    with err.status("Starting Scribe…"):
        system.start()
    err.print(f"Scribe is running at [bold]{system.url}[/]  (API docs: {system.url}/docs)")
    err.print(f"Data in {settings.data_dir}; worker log in {settings.data_dir / 'worker.log'}")
    err.print("Press Ctrl-C to stop.")
    try:
        while True:
            time.sleep(1)
            if system.worker is not None and not system.worker.alive():
                err.print("[red]The worker stopped; see the worker log.[/]")
                break
    except KeyboardInterrupt:
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
    from gateway.server import server_config

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


# ---------------------------------------------------------------- jobs


@app.command()
def replay(
    job_id: Annotated[str, typer.Argument(help="Job id")],
    stage: Annotated[str, typer.Argument(help=f"One of: {', '.join(STAGES)}")],
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
            final = _follow(client, job_id)
            if final.type == "job.failed":
                raise fail(f"the {final.stage} stage failed: {final.message}")
            sys.stdout.write(client.result(job_id, "txt"))
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
            j["id"],
            j["status"],
            j.get("filename") or "",
            dur,
            j.get("language") or "",
            j["created_at"][:19],
        )
    out.print(table)


# ---------------------------------------------------------------- speakers


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
    text = escape(speaker["consent_by"])
    if speaker.get("consent_at"):
        text += f" ({_when(speaker['consent_at'], date_only=True)})"
    if speaker.get("consent_note"):
        text += f"\n[dim]{escape(speaker['consent_note'])}[/]"
    return text


@speakers_app.command("enroll")
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
        with connect(server) as client, err.status(f"Enrolling {escape(name)}…"):
            speaker = client.enroll(
                name, clips, consent_by=consent_by, consent_note=consent_note, expires_at=expires
            )
    except ApiError as exc:
        if exc.status == 422 and exc.message.startswith("consent_by:") and not consent_by:
            err.print(f"[bold red]error:[/] the server refused to enroll {escape(name)}:")
            err.print(escape(exc.message))
            err.print("Say who consented with --consent-by NAME (and optionally --consent-note).")
            raise typer.Exit(1) from None
        raise fail(exc.message) from None
    out.print(
        f"Enrolled {escape(speaker['name'])} as {speaker['id']} ({speaker['num_clips']} clips)"
    )
    if speaker.get("consent_by"):
        out.print(f"Consent: {_consent(speaker)}")
    if speaker.get("expires_at"):
        out.print(f"Expires: {_when(speaker['expires_at'])}")


@speakers_app.command("list")
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
        model = escape(s["model"]) + (" [yellow](stale)[/]" if s.get("stale") else "")
        table.add_row(
            s["id"],
            escape(s["name"]),
            str(s["num_clips"]),
            model,
            _when(s["created_at"], date_only=True),
            _consent(s),
            _when(s.get("expires_at")) or "[dim]never[/]",
        )
    out.print(table)


@speakers_app.command("delete")
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
    out.print(f"Deleted {speaker_id}")


# ---------------------------------------------------------------- keys


def _with_database(action: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    """Run `action` against the configured database (the embedded one when none is set),
    migrated first."""
    from cli.local import EmbeddedServers
    from storage.db import create_pool, migrate

    settings = Settings()
    servers = EmbeddedServers(settings.data_dir)
    if not settings.database_url:
        settings = servers.resolve(settings.model_copy(update={"redis_url": "unused"}))

    async def go() -> T:
        assert settings.database_url
        pool = await create_pool(settings.database_url, max_size=1)
        try:
            await migrate(pool)
            return await action(pool)
        finally:
            await pool.close()

    try:
        return asyncio.run(go())
    finally:
        servers.stop()


def _with_auth_store(action: Callable[[AuthStore], Awaitable[T]]) -> T:
    """Run `action` with the key store of the configured database."""
    from storage.auth import AuthStore

    return _with_database(lambda pool: action(AuthStore(pool)))


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="What the key is for, e.g. alice-laptop")],
    tenant: Annotated[
        str | None,
        typer.Option(help="Tenant (user or team) the key acts for; default: one named NAME"),
    ] = None,
    max_upload_bytes: Annotated[int | None, typer.Option(help="Largest upload")] = None,
    max_duration_s: Annotated[float | None, typer.Option(help="Longest recording (s)")] = None,
    max_concurrent_jobs: Annotated[
        int | None, typer.Option(help="Unfinished jobs the tenant may have at once")
    ] = None,
) -> None:
    """Create an API key and print its token (shown only this once)."""

    async def create(auth: AuthStore) -> tuple[ApiKey, str]:
        return await auth.create_key(
            name,
            tenant=tenant,
            max_upload_bytes=max_upload_bytes,
            max_duration_s=max_duration_s,
            max_concurrent_jobs=max_concurrent_jobs,
        )

    key, token = _with_auth_store(create)
    err.print(f"Created key {key.id} ({key.name}) for tenant {key.tenant}. Keep the token;")
    err.print("it is not stored and cannot be shown again:")
    sys.stdout.write(token + "\n")


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (never their tokens)."""

    async def list_all(auth: AuthStore) -> list[ApiKey]:
        return await auth.list_keys()

    table = Table("id", "name", "tenant", "prefix", "created", "revoked", "limits")
    for k in _with_auth_store(list_all):
        limits = ", ".join(
            f"{label}={value}"
            for label, value in (
                ("upload", k.max_upload_bytes),
                ("duration", k.max_duration_s),
                ("jobs", k.max_concurrent_jobs),
            )
            if value is not None
        )
        revoked = k.revoked_at.isoformat()[:19] if k.revoked_at else ""
        table.add_row(
            k.id, k.name, k.tenant, k.prefix + "…", k.created_at.isoformat()[:19], revoked, limits
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="Id shown by `scribe keys list`")],
) -> None:
    """Revoke an API key: requests with it get 401 from now on."""
    from core.errors import NotFound

    async def revoke(auth: AuthStore) -> ApiKey:
        return await auth.revoke_key(key_id)

    try:
        key = _with_auth_store(revoke)
    except NotFound as exc:
        raise fail(exc.message) from None
    out.print(f"Revoked {key.id} ({key.name})")


# ---------------------------------------------------------------- calibration


@app.command()
def calibrate(
    audio: Annotated[
        Path | None,
        typer.Option(
            "--audio",
            metavar="DIR",
            file_okay=False,
            help="Folder of speaker folders, each holding three or more .flac or .wav"
            " utterances of that one person (LibriSpeech layout). An enrollment.tsv"
            " (columns speaker, utterance) there or in ../mix/ chooses the enrollment"
            " clips; otherwise each speaker's first two are used.",
            show_default="../shared/audio/librispeech beside the checkout, as bench uses",
        ),
    ] = None,
    target_far: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Highest acceptable false-accept rate: the share of impostor scores that"
            " may pass.",
        ),
    ] = 0.01,
    rule: Annotated[
        Literal["open-set", "pairwise"],
        typer.Option(
            help="Impostor scores: 'open-set' (each voice's best score against the other"
            " speakers' prints, as when a stranger is in a meeting) or 'pairwise' (every"
            " wrong voice-print pair).",
        ),
    ] = "open-set",
    per_speaker: Annotated[
        int, typer.Option(min=0, help="Score at most N utterances per speaker (0: all)")
    ] = 0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Compute and show the threshold; store nothing")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Also write the whole result (every score) here as JSON"),
    ] = None,
) -> None:
    """Calibrate the threshold that names a speaker, for the embedding model in use.

    Each speaker folder is enrolled from two utterances exactly as `scribe speakers enroll`
    does, every other utterance is scored against every voiceprint, and the threshold is
    the lowest whose false-accept rate on those scores is at most --target-far. It is
    stored in the database (SCRIBE_DATABASE_URL, or the embedded one) for the encoder's
    model id, and the identify stage uses it from then on, unless a job or
    SCRIBE_IDENTIFY_THRESHOLD sets a threshold. Run it where the worker's model settings
    (SCRIBE_MODELS__*) apply, and again after changing the embedding model.
    """
    from core.errors import ScribeError
    from stages import calibration

    audio = audio or calibration.DEFAULT_AUDIO_DIR
    if not audio.is_dir():
        raise fail(f"{audio} is not a directory (give the data with --audio DIR)", 2)
    settings = Settings()
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task("loading the speaker-embedding model", total=None)

            def on_progress(step: str, completed: float, total: float) -> None:
                bar.update(task, description="scoring utterances", completed=completed, total=total)

            result = calibration.calibrate(
                audio,
                target_far,
                per_speaker,
                rule,
                settings=settings,
                progress=on_progress,
            )
    except ScribeError as exc:
        raise fail(exc.message) from None
    _show_calibration(result)
    if output:
        result_with_report = {**result, "markdown": calibration.markdown(result)}
        output.write_text(json.dumps(result_with_report, indent=2) + "\n", encoding="utf-8")
        err.print(f"Wrote {output}")
    if dry_run:
        err.print("Not stored (--dry-run).")
        return

    async def store(pool: asyncpg.Pool) -> None:
        from storage.jobs import JobStore

        await calibration.save(JobStore(pool), result)

    _with_database(store)
    out.print(f"Stored: identify uses {result['threshold']:.3f} for {escape(result['model'])}.")
    if settings.identify_threshold is not None:
        err.print(
            f"[yellow]Note:[/] SCRIBE_IDENTIFY_THRESHOLD={settings.identify_threshold} is set"
            " and takes precedence over the calibration."
        )


def _show_calibration(r: dict[str, Any]) -> None:
    d = r["details"]
    impostors = d["best_wrong" if d["rule"] == "open-set" else "different"]
    same = d["same"]
    table = Table(show_header=False, box=None)
    for label, value in (
        ("model", escape(r["model"])),
        ("data", f"{len(d['speakers'])} speakers, {d['test_utterances']} test utterances"),
        ("rule", d["rule"]),
        ("threshold", f"[bold]{r['threshold']:.3f}[/]"),
        (
            "false accepts",
            f"{100 * r['far']:.2f} % ({round(r['far'] * impostors['n'])}/{impostors['n']};"
            f" target {100 * r['target_far']:g} %)",
        ),
        (
            "false rejects",
            f"{100 * r['frr']:.2f} % ({round(r['frr'] * same['n'])}/{same['n']})",
        ),
        ("same speaker", f"min {same['min']:.3f}, median {same['p50']:.3f}"),
        (
            "best wrong print",
            f"median {d['best_wrong']['p50']:.3f}, max {d['best_wrong']['max']:.3f}",
        ),
        ("top-1 unthresholded", f"{100 * d['top1_unthresholded']:.1f} %"),
    ):
        table.add_row(label, value)
    out.print(table)


def main() -> None:
    try:
        app()
    except httpx.TimeoutException as exc:
        err.print(f"[red]error:[/] the Scribe server did not answer in time ({_where(exc)})")
        raise SystemExit(1) from None
    except httpx.TransportError as exc:
        err.print(
            f"[red]error:[/] cannot reach the Scribe server ({_where(exc)}): {escape(str(exc))}"
            "\nCheck --server / SCRIBE_URL, or leave it out to run locally."
        )
        raise SystemExit(1) from None


def _where(exc: httpx.TransportError) -> str:
    try:
        return escape(str(exc.request.url))
    except RuntimeError:  # no request attached
        return "unknown address"


if __name__ == "__main__":
    main()
