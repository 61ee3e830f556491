"""Throwaway PostgreSQL databases for test runs (each run creates its own, then drops it)."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse as up
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg

from core.settings import Settings, StorageSettings
from tests.support import delete_redis_prefix


def database_url(dsn: str, name: str) -> str:
    """`dsn` pointing at database `name` (TCP or unix-socket DSNs alike)."""
    return up.urlunsplit(up.urlsplit(dsn)._replace(path=f"/{name}"))


async def create_database(admin: str, name: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(admin: str, name: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.contextmanager
def own_settings(
    settings: Settings, admin: str, data_dir: Path, name: str, **update: Any
) -> Iterator[Settings]:
    """`settings` with a database, Redis prefix and file:// store of their own (named after
    `name`), plus `update`: no other test's worker or reaper sees their jobs. The database
    and the Redis keys are removed afterwards."""
    assert settings.redis_url
    db_name = f"{settings.redis_prefix.replace('-', '_')}_{name.replace('-', '_')}"
    asyncio.run(create_database(admin, db_name))
    own = settings.model_copy(
        update={
            "data_dir": data_dir,
            "database_url": database_url(admin, db_name),
            "redis_prefix": f"{settings.redis_prefix}-{name}",
            "storage": StorageSettings(protocol="file", root=str(data_dir / "artifacts")),
            **update,
        }
    )
    try:
        yield own
    finally:
        asyncio.run(drop_database(admin, db_name))
        delete_redis_prefix(settings.redis_url, own.redis_prefix)
