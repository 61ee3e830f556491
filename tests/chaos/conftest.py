"""Fixtures for the crash tests: a database, Redis prefix and storage root per test, so a
test that kills workers never shares a queue with a worker of another test."""

from __future__ import annotations

import asyncio
import urllib.parse as up
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from core.settings import Settings, StorageSettings
from tests.support import delete_redis_prefix


async def _admin(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def own_settings(settings: Settings, pg_admin_dsn: str, tmp_path: Path) -> Iterator[Settings]:
    run = uuid.uuid4().hex[:8]
    db_name = f"scribe_crash_{run}"
    asyncio.run(_admin(pg_admin_dsn, f'CREATE DATABASE "{db_name}"'))
    assert settings.redis_url
    own = settings.model_copy(
        update={
            "data_dir": tmp_path,
            "database_url": up.urlunsplit(up.urlsplit(pg_admin_dsn)._replace(path=f"/{db_name}")),
            "redis_prefix": f"{settings.redis_prefix}-crash-{run}",
            "storage": StorageSettings(protocol="file", root=str(tmp_path / "artifacts")),
        }
    )
    yield own
    asyncio.run(_admin(pg_admin_dsn, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
    delete_redis_prefix(settings.redis_url, own.redis_prefix)
