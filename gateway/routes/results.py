"""What a job produces: the transcript (with its corrections), the artifacts behind it,
the decoded audio. Its live progress is in gateway/routes/events.py."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse

from core.artifacts import ArtifactRecord, DecodedAudio, MeetingResult
from core.errors import Conflict, NotFound
from gateway.http.deps import (
    GraphDep,
    JobId,
    JobStoreDep,
    PrincipalDep,
    RecordStoreDep,
    ServicesDep,
    StoreDep,
)
from gateway.services.transcripts import corrected_result
from storage.artifacts import ArtifactStore

router = APIRouter(prefix="/v1/jobs", tags=["results"])

ResultFormat = Literal["json", "srt", "vtt", "txt"]


@router.get(
    "/{job_id}/result",
    summary="The speaker-attributed transcript as JSON, SRT, WebVTT or plain text",
    responses={
        200: {
            # The JSON form's shape, for the page's generated API types.
            "model": MeetingResult,
            "content": {"text/plain": {}, "text/vtt": {}, "application/x-subrip": {}},
        }
    },
)
async def job_result(
    job_id: JobId,
    services: ServicesDep,
    principal: PrincipalDep,
    fmt: Annotated[ResultFormat, Query(alias="format")] = "json",
) -> Response:
    result = await corrected_result(services, job_id, principal.owner)
    from core.formats import render  # written beside the pipeline; no model imports

    body, media_type = render(result, fmt)
    headers = {}
    if fmt != "json":
        headers["Content-Disposition"] = f'attachment; filename="{job_id}.{fmt}"'
    return Response(body, media_type=media_type, headers=headers)


@router.get(
    "/{job_id}/artifacts",
    response_model=list[ArtifactRecord],
    summary="Every artifact of the job with its provenance (inputs, model, parameters)",
)
async def job_artifacts(
    job_id: JobId, jobs: JobStoreDep, records: RecordStoreDep, principal: PrincipalDep
) -> list[ArtifactRecord]:
    await jobs.get_job(job_id, principal.owner)
    return await records.list_artifacts(job_id, principal.owner)


# ---------------------------------------------------------------- audio

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


@router.get(
    "/{job_id}/audio",
    summary="The recording as decoded (16 kHz mono WAV), seekable with Range requests",
    responses={200: {"content": {"audio/wav": {}}}, 206: {"description": "a byte range"}},
    response_class=Response,
)
async def job_audio(
    job_id: JobId,
    request: Request,
    jobs: JobStoreDep,
    records: RecordStoreDep,
    store: StoreDep,
    graph: GraphDep,
    principal: PrincipalDep,
    token: Annotated[
        str | None, Query(description="a stream token, for clients that cannot send headers")
    ] = None,
) -> Response:
    job = await jobs.get_job(job_id, principal.owner)
    decode = graph.producer(DecodedAudio).name
    record = await records.current_artifact(job_id, decode)
    if record is None:
        if job.status == "failed":
            raise Conflict(f"job {job_id} failed before its audio was decoded")
        raise Conflict(f"job {job_id} is {job.status}; its audio is ready once {decode} finishes")
    decoded = await asyncio.to_thread(store.get_json, store.key_of(record.uri), DecodedAudio)
    key = store.key_of(decoded.audio_uri)
    if not await asyncio.to_thread(store.exists, key):
        raise NotFound(f"the decoded audio of job {job_id} is no longer stored")
    if store.is_local:
        return FileResponse(
            store.path(key),
            media_type="audio/wav",
            filename=f"{job_id}.wav",
            content_disposition_type="inline",
            headers={"Cache-Control": "no-cache"},
        )
    return ranged_stream(store, key, request.headers.get("range"))
