"""Sizes and durations as people read them in messages ("64.0 KiB", "2.5 min")."""

from __future__ import annotations


def human_bytes(n: int) -> str:
    """A size as people read it in a limit's message: "64.0 KiB", "2.0 GiB"."""
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"  # pragma: no cover


def human_duration(seconds: float) -> str:
    """A duration in the unit that reads best: 12.0 s, 2.5 min, 6.0 h."""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"
