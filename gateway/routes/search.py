"""Search across meetings: `GET /v1/search` (the caller's passages nearest to a query) and
`POST /v1/search/reindex` (embed the caller's succeeded jobs again). The logic is in
gateway/services/search.py; the index is the gateway's own (docs/architecture.md, "Search")."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from gateway.http.deps import PrincipalDep, ServicesDep
from gateway.http.errors import InvalidRequest
from gateway.services import search as search_service

router = APIRouter(prefix="/v1/search", tags=["search"])


class SearchHitOut(BaseModel):
    job_id: str
    file_name: str | None
    segment_index: int  # the first segment of the passage, in the result as corrected
    start: float  # seconds from the start of the meeting
    end: float
    speaker: str  # the name as corrected, else the label ("S1")
    text: str
    score: float  # cosine similarity, higher is nearer


class SearchResponse(BaseModel):
    query: str
    model: str  # the embedding model that ranked the hits
    hits: list[SearchHitOut]


class ReindexResponse(BaseModel):
    jobs: int  # succeeded jobs whose passages are being embedded again
    job_ids: list[str]


def _moment(value: str | None, name: str) -> datetime | None:
    """An ISO date ("2026-11-30", that day's midnight UTC) or date-time; naive is UTC."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"{name}: {value!r} is not a date; give one as 2026-11-30 or 2026-11-30T14:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get(
    "",
    response_model=SearchResponse,
    summary="The moments across your meetings nearest in meaning to a query",
)
async def search(
    services: ServicesDep,
    principal: PrincipalDep,
    q: Annotated[str, Query(description="what to look for, in any language")] = "",
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
    job_id: Annotated[str | None, Query(description="only this job")] = None,
    speaker: Annotated[str | None, Query(description="only this speaker (name or label)")] = None,
    after: Annotated[str | None, Query(description="meetings created from this date")] = None,
    before: Annotated[str | None, Query(description="meetings created before this date")] = None,
) -> SearchResponse:
    query = " ".join(q.split())
    if not query:
        raise InvalidRequest("q: say what to look for (the query is empty)")
    if len(query) > search_service.MAX_QUERY_CHARS:
        raise InvalidRequest(
            f"q: the query is {len(query)} characters long; keep it under"
            f" {search_service.MAX_QUERY_CHARS} (a question or a few words)"
        )
    found = await search_service.search(
        services,
        query,
        owner=principal.owner,
        limit=limit,
        job_id=job_id or None,
        speaker=(speaker or "").strip() or None,
        after=_moment(after, "after"),
        before=_moment(before, "before"),
    )
    hits = [
        SearchHitOut(
            job_id=h.job_id,
            file_name=h.file_name,
            segment_index=h.segment_index,
            start=h.start,
            end=h.end,
            speaker=h.speaker,
            text=h.text,
            score=h.score,
        )
        for h in found.hits
    ]
    return SearchResponse(query=query, model=found.model, hits=hits)


@router.post(
    "/reindex",
    status_code=202,
    response_model=ReindexResponse,
    summary="Embed your succeeded jobs again (made before search, or after a model change)",
)
async def reindex(services: ServicesDep, principal: PrincipalDep) -> ReindexResponse:
    sent = await search_service.reindex(services, principal.owner)
    return ReindexResponse(jobs=len(sent), job_ids=sent)
