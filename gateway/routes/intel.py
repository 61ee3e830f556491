"""What was decided: `GET /v1/jobs/{id}/summary` (a meeting's summary, decisions and
action items, each citing its moments) and `POST /v1/ask` (an answer across meetings from
the caller's search hits, with its citations; streamed as Server-Sent Events when asked).
The logic is in gateway/services/summary.py and gateway/services/ask.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from core.artifacts import RejectedClaim
from gateway.http.deps import JobId, PrincipalDep, ServicesDep
from gateway.http.errors import InvalidRequest
from gateway.services import ask as ask_service
from gateway.services import summary as summary_service

router = APIRouter(tags=["intelligence"])


class MomentOut(BaseModel):
    segment: int
    start: float
    end: float
    speaker: str


class PointOut(BaseModel):
    text: str
    citations: list[MomentOut]


class ActionItemOut(BaseModel):
    what: str
    owner: str | None  # the speaker's name as corrected now, else their label
    owner_speaker: str | None  # the label, "S2"
    due: str | None  # only when a cited segment says it
    citations: list[MomentOut]


class SummaryOut(BaseModel):
    language: str | None
    model: str
    summary: list[PointOut]
    decisions: list[PointOut]
    action_items: list[ActionItemOut]
    rejected: list[RejectedClaim]  # what the citation check left out, and why
    chunks: int


class SummaryResponse(BaseModel):
    job_id: str
    # The summarize stage's status; with "running" or "queued" after a rename the last
    # summary is still given.
    status: Literal["pending", "queued", "running", "succeeded", "failed"]
    error: str | None = None
    summary: SummaryOut | None = None


@router.get(
    "/v1/jobs/{job_id}/summary",
    response_model=SummaryResponse,
    summary="The meeting's summary, decisions and action items, each citing its moments",
)
async def job_summary(
    job_id: JobId, services: ServicesDep, principal: PrincipalDep
) -> SummaryResponse:
    found = await summary_service.job_summary(services, job_id, principal.owner)
    out = None
    doc = found.summary
    if doc is not None:

        def cite(segments: list[int]) -> list[MomentOut]:
            return [MomentOut(**asdict(found.moments[i])) for i in segments if i in found.moments]

        out = SummaryOut(
            language=doc.language,
            model=doc.model,
            summary=[PointOut(text=p.text, citations=cite(p.segments)) for p in doc.summary],
            decisions=[PointOut(text=p.text, citations=cite(p.segments)) for p in doc.decisions],
            action_items=[
                ActionItemOut(
                    what=a.what,
                    owner=a.owner,
                    owner_speaker=a.owner_speaker,
                    due=a.due,
                    citations=cite(a.segments),
                )
                for a in doc.action_items
            ],
            rejected=doc.rejected,
            chunks=doc.chunks,
        )
    return SummaryResponse(
        job_id=job_id,
        status=found.status,  # type: ignore[arg-type]
        error=found.error,
        summary=out,
    )


class AskRequest(BaseModel):
    question: str = Field(description="a question about your meetings, in any language")
    job_id: str | None = Field(default=None, description="only this meeting")
    stream: bool = Field(
        default=False, description="answer as Server-Sent Events: `delta`s, then `answer`"
    )


class CitationOut(BaseModel):
    job_id: str
    file_name: str | None
    segment: int
    start: float
    end: float
    speaker: str
    text: str


class SentenceOut(BaseModel):
    text: str
    citations: list[int]  # indexes into `citations`


class AskResponse(BaseModel):
    question: str
    language: str  # the question's, which the answer is written in
    answer: str
    declined: bool  # the hits do not support an answer: `citations` is empty
    sentences: list[SentenceOut]
    citations: list[CitationOut]
    dropped: list[str]  # sentences whose citations failed the check: not facts
    model: str | None


def _response(result: ask_service.AskResult) -> AskResponse:
    return AskResponse(
        question=result.question,
        language=result.language,
        answer=result.answer,
        declined=result.declined,
        sentences=[SentenceOut(text=t, citations=c) for t, c in result.sentences],
        citations=[CitationOut(**asdict(c)) for c in result.citations],
        dropped=result.dropped,
        model=result.model,
    )


@router.post(
    "/v1/ask",
    response_model=AskResponse,
    summary="An answer across your meetings from what they say, citing its moments",
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def ask(body: AskRequest, services: ServicesDep, principal: PrincipalDep) -> object:
    question = " ".join(body.question.split())
    if not question:
        raise InvalidRequest("question: ask something (the question is empty)")
    limit = ask_service.MAX_QUESTION_CHARS
    if len(question) > limit:
        raise InvalidRequest(
            f"question: it is {len(question)} characters long; keep it under {limit}"
        )
    events = ask_service.ask(
        services, question, owner=principal.owner, job_id=(body.job_id or "").strip() or None
    )
    # The first item before any byte is sent: a model that cannot be reached is a 503.
    first = await anext(events)
    if not body.stream:
        last = first
        async for later in events:
            last = later
        assert isinstance(last, ask_service.AskResult)
        return _response(last)

    async def sse() -> AsyncIterator[str]:
        async def items() -> AsyncIterator[ask_service.Delta | ask_service.AskResult]:
            yield first
            async for item in events:
                yield item

        try:
            async for item in items():
                if isinstance(item, ask_service.Delta):
                    yield f"event: delta\ndata: {json.dumps({'text': item.text})}\n\n"
                else:
                    yield f"event: answer\ndata: {_response(item).model_dump_json()}\n\n"
        except Exception as exc:  # the model stopped mid-answer: say so, in the stream
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            yield f"event: error\ndata: {json.dumps({'message': message})}\n\n"
        finally:
            await events.aclose()

    return StreamingResponse(
        sse(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )
