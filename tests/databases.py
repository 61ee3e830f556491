"""Throwaway PostgreSQL databases for test runs (each run creates its own, then drops it)."""

from __future__ import annotations

import urllib.parse as up

import asyncpg


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
