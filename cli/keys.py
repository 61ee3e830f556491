"""`scribe keys create|list|revoke`: API keys, straight in the database (no server)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.table import Table

from cli.common import err, fail, out, shown, with_database

if TYPE_CHECKING:
    from storage.auth import ApiKey, AuthStore

T = TypeVar("T")

app = typer.Typer(
    help="API keys (stored hashed; talks to the database directly).", no_args_is_help=True
)


def _with_auth_store(action: Callable[[AuthStore], Awaitable[T]]) -> T:
    """Run `action` with the key store of the configured database."""
    from storage.auth import AuthStore

    return with_database(lambda pool: action(AuthStore(pool)))


@app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="What the key is for, e.g. alice-laptop")],
    tenant: Annotated[
        str | None,
        typer.Option(help="Tenant (user or team) the key acts for; default: one named NAME"),
    ] = None,
    admin: Annotated[
        bool,
        typer.Option(help="The key may create, list and revoke its tenant's keys (page, API)"),
    ] = False,
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
            admin=admin,
            max_upload_bytes=max_upload_bytes,
            max_duration_s=max_duration_s,
            max_concurrent_jobs=max_concurrent_jobs,
        )

    key, token = _with_auth_store(create)
    role = "admin key" if key.admin else "key"
    err.print(
        f"Created {role} {shown(key.id)} ({shown(key.name)}) for tenant {shown(key.tenant)}."
        " Keep the token;"
    )
    err.print("it is not stored and cannot be shown again:")
    sys.stdout.write(token + "\n")


@app.command("list")
def keys_list() -> None:
    """List API keys (never their tokens)."""

    async def list_all(auth: AuthStore) -> list[ApiKey]:
        return await auth.list_keys()

    table = Table("id", "name", "tenant", "role", "prefix", "created", "revoked", "limits")
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
            shown(k.id),
            shown(k.name),
            shown(k.tenant),
            "admin" if k.admin else "",
            shown(k.prefix) + "…",
            k.created_at.isoformat()[:19],
            revoked,
            shown(limits),
        )
    out.print(table)


@app.command("revoke")
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
    out.print(f"Revoked {shown(key.id)} ({shown(key.name)})")
