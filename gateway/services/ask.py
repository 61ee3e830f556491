"""Ask across meetings: a question answered from the caller's search hits only, every
sentence citing the moments it rests on, streamed as the model writes it.

The steps: the caller's search hits for the question (the tenant's meetings, or one job);
none: declined at once. Otherwise the language model (the gateway's, loaded on the first
question; LanguageModelUnavailable, a 503, when it cannot be reached, before anything is
streamed) writes from those hits alone (llm/answer.py); its sentences' citations are
checked against the hits it was given, then each cited moment against the job's
transcript as it reads now: the job must be the caller's and the segment must exist in
it. What fails is dropped; no sentence left: declined, citing nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from core.artifacts import MeetingResult
from core.errors import ScribeError
from gateway.services.container import Services
from gateway.services.search import search
from gateway.services.transcripts import corrected_result
from llm.answer import Answer, check_answer, prompt
from llm.lang import guess_language
from search.index import SearchHit

MAX_QUESTION_CHARS = 500


@dataclass(frozen=True)
class Citation:
    job_id: str
    file_name: str | None
    segment: int  # the first segment of the cited passage, in the result as corrected
    start: float
    end: float
    speaker: str
    text: str


@dataclass
class AskResult:
    question: str
    language: str
    answer: str
    declined: bool
    sentences: list[tuple[str, list[int]]]  # (text, indexes into citations)
    citations: list[Citation]
    dropped: list[str] = field(default_factory=list)
    model: str | None = None


@dataclass(frozen=True)
class Delta:
    text: str


def _declined(question: str, language: str, model: str | None = None) -> AskResult:
    answer = Answer(language=language, declined=True)
    return AskResult(question, language, answer.text, True, [], [], [], model)


async def _verified(
    services: Services, hits: list[SearchHit], owner: str | None
) -> dict[int, Citation]:
    """The hits whose moment is still in the caller's job: the job exists, is theirs, and
    the segment is in its transcript as corrected now. By hit index."""
    results: dict[str, MeetingResult | None] = {}
    out: dict[int, Citation] = {}
    for n, hit in enumerate(hits):
        if hit.job_id not in results:
            try:
                results[hit.job_id] = await corrected_result(services, hit.job_id, owner)
            except ScribeError:  # deleted, another tenant's, running again: not a source
                results[hit.job_id] = None
        result = results[hit.job_id]
        if result is None:
            continue
        if not 0 <= hit.segment_index < len(result.segments):
            continue
        out[n] = Citation(
            hit.job_id, hit.file_name, hit.segment_index, hit.start, hit.end, hit.speaker, hit.text
        )
    return out


async def ask(
    services: Services, question: str, *, owner: str | None, job_id: str | None = None
) -> AsyncGenerator[Delta | AskResult, None]:
    """Deltas of the draft as generated, then the checked AskResult. The first item is
    awaited before a response starts, so a model that cannot be reached is a 503."""
    language = guess_language(question)
    if job_id is not None:
        await services.jobs.get_job(job_id, owner)  # 404 for another tenant's job
    llm = services.settings.llm
    found = await search(services, question, owner=owner, limit=llm.ask_passages, job_id=job_id)
    hits = found.hits
    if not hits:
        yield _declined(question, language)
        return
    model = await asyncio.to_thread(services.language.get)
    messages = prompt(question, hits, language)
    queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def produce() -> None:
        try:
            for piece in model.stream(messages, max_tokens=llm.max_tokens):
                loop.call_soon_threadsafe(queue.put_nowait, piece)
        except BaseException as exc:  # handed to the event loop, raised there
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        else:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    worker = loop.run_in_executor(None, produce)
    reply: list[str] = []
    try:
        while True:
            item = await queue.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            reply.append(item)
            yield Delta(item)
    finally:
        with contextlib.suppress(BaseException):
            await worker
    checked = check_answer("".join(reply), len(hits), language)
    if checked.declined:
        result = _declined(question, language, model.model_id)
        result.dropped = checked.dropped
        yield result
        return
    verified = await _verified(services, hits, owner)
    citations: list[Citation] = []
    place: dict[int, int] = {}
    sentences: list[tuple[str, list[int]]] = []
    dropped = list(checked.dropped)
    for sentence in checked.sentences:
        cited = [i for i in sentence.sources if i in verified]
        if not cited:
            dropped.append(sentence.text)
            continue
        for i in cited:
            if i not in place:
                place[i] = len(citations)
                citations.append(verified[i])
        sentences.append((sentence.text, [place[i] for i in cited]))
    if not sentences:
        result = _declined(question, language, model.model_id)
        result.dropped = dropped
        yield result
        return
    yield AskResult(
        question,
        language,
        " ".join(text for text, _ in sentences),
        False,
        sentences,
        citations,
        dropped,
        model.model_id,
    )
