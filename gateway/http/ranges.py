"""Serving a stored file with Range requests (the decoded audio, so the page can seek):
one byte range at a time, from any fsspec store, read in chunks."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from fastapi import Response
from fastapi.responses import StreamingResponse

from storage.artifacts import ArtifactStore

AUDIO_CHUNK = 256 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range `[start, end]` (inclusive) a Range header asks for, or None for
    the whole file (no header, several ranges, or a unit other than bytes). Raises
    `RangeNotSatisfiable` for a range that starts past the end."""
    if not header:
        return None
    m = _RANGE.fullmatch(header.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if not first:  # "bytes=-500": the last 500 bytes
        length = int(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiable(size)
    return start, end


class RangeNotSatisfiable(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"range outside 0-{size}")
        self.size = size


def ranged_stream(store: ArtifactStore, key: str, range_header: str | None) -> Response:
    """Serve `key` from any fsspec store with single-range support (206), reading in
    chunks; `file://` stores use FileResponse instead, which does the same from disk."""
    path = store.path(key)
    size = int(store.fs.size(path))
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-cache"}
    try:
        wanted = parse_range(range_header, size)
    except RangeNotSatisfiable as e:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{e.size}"})
    start, end = wanted if wanted is not None else (0, size - 1)

    async def body() -> AsyncIterator[bytes]:
        f = await asyncio.to_thread(store.fs.open, path, "rb")
        try:
            await asyncio.to_thread(f.seek, start)
            left = end - start + 1
            while left > 0:
                chunk: bytes = await asyncio.to_thread(f.read, min(AUDIO_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(f.close)

    headers["Content-Length"] = str(end - start + 1)
    if wanted is None:
        return StreamingResponse(body(), media_type="audio/wav", headers=headers)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(body(), status_code=206, media_type="audio/wav", headers=headers)
