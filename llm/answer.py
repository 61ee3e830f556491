"""An answer to a question across meetings, written from search hits only, each sentence
citing the hits it rests on, the citations checked by code.

The model is shown the hits as numbered sources and asked to end every sentence with the
numbers it rests on (`[2]`), or to reply `NO_ANSWER` when the sources do not say. Then
`check_answer`: a sentence is kept only if it cites at least one source that exists among
those given; its citations are those sources; a sentence citing nothing valid is dropped
(listed in `dropped`, never shown as fact). No kept sentence, or NO_ANSWER: the answer is
declined and cites nothing. The gateway then checks each cited segment against the job's
transcript as it reads now (gateway/services/ask.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from llm.base import Message
from llm.lang import language_name

NO_ANSWER = "NO_ANSWER"
DECLINED = {
    "en": "The meetings searched do not say; nothing found supports an answer.",
    "fr": "Les réunions consultées ne le disent pas ; rien de ce qui a été trouvé ne"
    " permet de répondre.",
}
_MARK = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_SENTENCE = re.compile(r"(?<=[.!?…])\s+|\n+")


class Source(Protocol):
    """A search hit as the answer reads it (search.index.SearchHit is one)."""

    @property
    def job_id(self) -> str: ...
    @property
    def file_name(self) -> str | None: ...
    @property
    def start(self) -> float: ...
    @property
    def text(self) -> str: ...
    @property
    def speaker(self) -> str: ...


@dataclass
class Sentence:
    text: str
    sources: list[int]  # indexes into the sources given, from 0


@dataclass
class Answer:
    language: str
    sentences: list[Sentence] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    declined: bool = False

    @property
    def text(self) -> str:
        if self.declined:
            return DECLINED.get(self.language, DECLINED["en"])
        return " ".join(s.text for s in self.sentences)


def prompt(question: str, sources: Sequence[Source], language: str) -> list[Message]:
    listed = []
    for n, s in enumerate(sources, start=1):
        minutes, seconds = divmod(int(s.start), 60)
        where = s.file_name or s.job_id[:8]
        listed.append(f"[{n}] ({where}, {minutes:02d}:{seconds:02d}, {s.speaker}) {s.text}")
    system = (
        "You answer questions about meetings using only the numbered sources given, which"
        " are moments of the transcripts. Answer in one to three short sentences. End every"
        " sentence with the numbers of the sources it comes from in brackets, like [2]."
        f" If the sources do not contain the answer, reply exactly {NO_ANSWER}."
        f" Answer in {language_name(language)}."
    )
    user = "Sources:\n" + "\n".join(listed) + f"\n\nQuestion: {question}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def check_answer(reply: str, n_sources: int, language: str) -> Answer:
    """The reply's sentences whose citations pass (see the module's docstring)."""
    answer = Answer(language=language)
    text = reply.strip()
    if not text or text.upper().startswith(NO_ANSWER) or NO_ANSWER in text.upper()[:40]:
        answer.declined = True
        return answer
    pending: list[str] = []  # sentences before the marker that cites them ("A. B. [1]")
    for raw in _SENTENCE.split(text):
        piece = raw.strip()
        if not piece:
            continue
        marks = [int(n) for group in _MARK.findall(piece) for n in re.split(r"[,;]", group)]
        plain = " ".join(_MARK.sub("", piece).split()).strip()
        plain = re.sub(r"\s+([.,;:!?])", r"\1", plain)
        if not re.search(r"\w", plain):  # "[" or "." alone: nothing said
            plain = ""
        if not marks:
            if plain:
                pending.append(plain)
            continue
        valid = sorted({m - 1 for m in marks if 1 <= m <= n_sources})
        if not valid:
            answer.dropped += [*pending, plain] if plain else pending
            pending = []
            continue
        for earlier in pending:  # "A. B. [1]": B's marker backs A as well
            answer.sentences.append(Sentence(earlier, valid))
        pending = []
        if plain:
            answer.sentences.append(Sentence(plain, valid))
        elif answer.sentences:
            answer.sentences[-1].sources = sorted(set(answer.sentences[-1].sources) | set(valid))
    answer.dropped += pending
    if not answer.sentences:
        answer.declined = True
    return answer
