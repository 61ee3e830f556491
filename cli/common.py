"""What every `scribe` command shares: the consoles and what may be printed on them
(`shown`, `plain`), one-line errors, the check of a file argument, and the connection to a
Scribe server or to the database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from cli.client import ScribeClient
from core.settings import Settings

if TYPE_CHECKING:
    import asyncpg

T = TypeVar("T")

# No emoji codes: a name with ":smile:" in it is printed as it is written.
err = Console(stderr=True, emoji=False)
out = Console(emoji=False)

# Terminal escape sequences, 7-bit (ESC ...) or 8-bit (C1): CSI (colours, cursor moves,
# screen clears), the string ones (OSC: window titles, hyperlinks, the clipboard; DCS, SOS,
# PM, APC) up to their terminator, and the other ESC sequences.
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]"
)
# C0 and C1 control characters but newline and tab, and DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(text: object) -> str:
    """`text` without terminal escape sequences and control characters (newlines and tabs
    stay): what a client wrote (a key or file name, a transcript, a search hit, a server's
    error message) as it may reach the operator's terminal, with nothing in it the terminal
    would act on."""
    return _CONTROL.sub("", _ESCAPE_SEQUENCE.sub("", str(text)))


def shown(text: object) -> str:
    """`plain(text)` escaped for Rich: for every client-written string a console prints
    (tables included), so that it reads as written and never as markup."""
    return escape(plain(text))


ServerOpt = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="SCRIBE_URL",
        help="URL of a running Scribe (e.g. http://scribe.lan). Default: run locally.",
    ),
]

# Set by the app callback from --api-key / SCRIBE_API_KEY: the key for `--server`.
_api_key: str | None = None


def use_api_key(api_key: str | None) -> None:
    """The key `connect` sends to a `--server` from now on."""
    global _api_key
    _api_key = api_key


def current_api_key() -> str | None:
    """The key given with --api-key / SCRIBE_API_KEY, if any."""
    return _api_key


@contextlib.contextmanager
def connect(
    server: str | None, *, worker: bool = True, live: bool = False
) -> Iterator[ScribeClient]:
    """A client of `server`, or of a whole system started here for this command (with a
    live worker too when `live`)."""
    if server:
        with ScribeClient(server, api_key=_api_key) as client:
            yield client
        return
    from cli.local import STOP_GRACE_S, LocalSystem

    settings = Settings()
    if settings.auth == "auto":
        # A gateway of this command alone, on loopback, by someone who holds the database
        # URL (and so every row already): no key to ask for.
        settings = settings.model_copy(update={"auth": "off"})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log_file = settings.data_dir / "worker.log"
    with err.status("Starting Scribe locally (database, queue, worker)…"):
        system = LocalSystem(
            settings,
            worker=worker,
            worker_log=log_file,
            shutdown_timeout=STOP_GRACE_S,
            live_worker=live,
        ).start()
    try:
        with ScribeClient(system.url) as client:
            yield client
    finally:
        with err.status("Stopping…"):
            system.stop()


def with_database(action: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
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


def fail(message: str, code: int = 1) -> typer.Exit:
    # soft_wrap: one line whatever the terminal's width, so a path is never broken in two.
    err.print(f"[bold red]error:[/] {shown(message)}", soft_wrap=True)
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
