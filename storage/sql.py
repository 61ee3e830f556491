"""What the stores' SQL shares: ids parsed from text, and the tenant scope of a query."""

from __future__ import annotations

import uuid

from core.errors import NotFound


def parse_id(value: str) -> uuid.UUID:
    """The UUID a client sent; NotFound for anything else, as no row has such an id."""
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"no such id: {value!r}") from None


def owner_id(owner: str | None) -> uuid.UUID | None:
    return uuid.UUID(owner) if owner is not None else None


def mine(n: int, column: str = "owner") -> str:
    """The condition that scopes a query to the tenant in parameter `$n`.

    `owner` arguments scope a query to one tenant; None leaves it unscoped (auth off, and
    the worker, which acts for the job's owner). Another tenant's row reads as missing:
    NotFound. `column` names the owner column where the query joins several tables.
    """
    return f"(${n}::uuid IS NULL OR {column} = ${n}::uuid)"
