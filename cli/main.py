"""`scribe`: run a meeting through the pipeline, serve the API, manage voiceprints,
calibrate speaker identification.

Client commands talk to `--server URL` (or SCRIBE_URL) when given; otherwise they start
the whole system on this machine (embedded PostgreSQL and Redis when no URL is set,
a worker process and the gateway) for the duration of the command.

Each command lives in a module of its own (cli/run.py, cli/servers.py, cli/jobs.py,
cli/calibrate.py, cli/speakers.py, cli/keys.py); this one puts them together, in the order
`scribe --help` lists them.
"""

from __future__ import annotations

import warnings
from typing import Annotated

import httpx
import typer

from cli import calibrate, intel, jobs, keys, live, run, search, servers, speakers
from cli.common import err, out, shown, use_api_key
from cli.lifeline import exit_on_termination
from cli.speakers import parse_expires
from core.process import unblock_stop_signals

# `out` and `parse_expires` are reached as cli.main.out / cli.main.parse_expires too.
__all__ = ["app", "main", "out", "parse_expires"]

app = typer.Typer(
    help="Scribe: who said what, when. Speaker-attributed, word-timed meeting transcripts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Added without a name, a module's commands are the app's own.
for commands in (run.app, live.app, servers.app, jobs.app, search.app, intel.app, calibrate.app):
    app.add_typer(commands)
app.add_typer(speakers.app, name="speakers")
app.add_typer(keys.app, name="keys")


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
    use_api_key(api_key)


def _quiet_runtime_dir_warning() -> None:
    """pgserver (the embedded PostgreSQL) asks platformdirs for the user's runtime folder
    (its lock file) when it is imported. Where XDG_RUNTIME_DIR is not set (a plain `su`, cron,
    containers, many CI shells), platformdirs warns with a RuntimeDirWarning and falls back
    to a private folder under the temporary directory, which serves as well: there is
    nothing for the person running `scribe` to do about it. Only that category is quieted.
    platformdirs comes with pgserver (the embedded extra), so it may be absent."""
    try:
        from platformdirs import RuntimeDirWarning
    except ImportError:  # no embedded extra (the gateway image), or an older platformdirs
        return
    warnings.filterwarnings("ignore", category=RuntimeDirWarning)


def main() -> None:
    unblock_stop_signals()  # before anything is started: children inherit the mask
    exit_on_termination()
    _quiet_runtime_dir_warning()
    try:
        app()
    except httpx.TimeoutException as exc:
        err.print(f"[red]error:[/] the Scribe server did not answer in time ({_where(exc)})")
        raise SystemExit(1) from None
    except httpx.TransportError as exc:
        err.print(
            f"[red]error:[/] cannot reach the Scribe server ({_where(exc)}): {shown(exc)}"
            "\nCheck --server / SCRIBE_URL, or leave it out to run locally."
        )
        raise SystemExit(1) from None


def _where(exc: httpx.TransportError) -> str:
    try:
        return shown(exc.request.url)
    except RuntimeError:  # no request attached
        return "unknown address"


if __name__ == "__main__":
    main()
