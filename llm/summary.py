"""A meeting's summary, decisions and action items, every one citing the segments it
comes from, the citations checked by code (never taken on the model's word).

The transcript as people read it (renames and text fixes applied) is shown to the model
as numbered lines, `[12] 03:21 Alice: ...`; the model answers JSON constrained by a schema
(`SCHEMA`) whose items carry `segments`. Then `check_*`:
- a cited segment must be one of the lines this call was given (so, one of the job's);
  an item none of whose citations pass is not a fact: it goes to `rejected`;
- an owner must be a speaker of the meeting (name or label), else it is left empty;
- a due date must be said in a cited segment, else it is left empty (a small model
  invents dates).
A meeting longer than the model's context is read in chunks that fit (map); the chunks'
summary points are merged by the model into one list, citing only segments the chunks
cited (reduce); decisions and action items are the chunks', in order, without repeats.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.artifacts import ActionItem, MeetingResult, RejectedClaim, Summary, SummaryPoint
from llm.base import LanguageModel, Message, estimate_tokens
from llm.lang import language_name

MAX_CITATIONS = 4
MAX_POINTS = 8
# At least one citation per item, by the grammar: a small model otherwise leaves them out.
# `schema_for` narrows the numbers to the lines a call gives (the code checks them anyway:
# a server may ignore the schema).
# At most a few: a small model otherwise cites every line, and spends its tokens on that.
_CITED = {
    "type": "array",
    "items": {"type": "integer", "minimum": 0},
    "minItems": 1,
    "maxItems": MAX_CITATIONS,
}
# One sentence, not a paragraph: greedy decoding of a small model can repeat a sentence
# until the token limit.
_SENTENCE = {"type": "string", "maxLength": 240}
_POINTS = {
    "type": "array",
    "maxItems": 6,
    "items": {
        "type": "object",
        "properties": {
            "text": _SENTENCE,
            "segments": _CITED,
        },
        "required": ["text", "segments"],
    },
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        # A meeting always has main points: the 0.5B model otherwise gave an empty list.
        "summary": {**_POINTS, "minItems": 1},
        "decisions": _POINTS,
        "action_items": {
            "type": "array",
            "maxItems": 6,
            "items": {
                "type": "object",
                "properties": {
                    "what": _SENTENCE,
                    "owner": {"type": "string"},
                    "due": {"type": "string"},
                    "segments": _CITED,
                },
                "required": ["what", "owner", "due", "segments"],
            },
        },
    },
    "required": ["summary", "decisions", "action_items"],
}
REDUCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"summary": _POINTS},
    "required": ["summary"],
}


def schema_for(schema: dict[str, Any], allowed: list[int]) -> dict[str, Any]:
    """`schema` with every `segments` array's items one of `allowed`."""
    cited = {**_CITED, "items": {"type": "integer", "enum": sorted(allowed)}}

    def narrow(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: cited if k == "segments" else narrow(v) for k, v in node.items()}
        if isinstance(node, list):
            return [narrow(v) for v in node]
        return node

    narrowed: dict[str, Any] = narrow(schema)
    return narrowed


PROMPT_OVERHEAD_TOKENS = 450  # the instructions around the transcript lines


@dataclass(frozen=True)
class Line:
    """One result segment as the model reads it."""

    index: int
    start: float
    speaker: str  # the label, "S1"
    name: str  # the name as corrected, else the label
    text: str

    def render(self) -> str:
        minutes, seconds = divmod(int(self.start), 60)
        return f"[{self.index}] {minutes:02d}:{seconds:02d} {self.name}: {self.text}"


def lines_of(result: MeetingResult) -> list[Line]:
    names = {s.id: s.name or s.id for s in result.speakers}
    return [
        Line(i, seg.start, seg.speaker, names.get(seg.speaker, seg.speaker), seg.text.strip())
        for i, seg in enumerate(result.segments)
        if seg.text.strip()
    ]


def chunks_of(lines: list[Line], budget_tokens: int) -> list[list[Line]]:
    """Consecutive lines, each chunk within `budget_tokens` (a line longer than the budget
    is a chunk of its own, cut to fit)."""
    chunks: list[list[Line]] = []
    current: list[Line] = []
    used = 0
    for line in lines:
        cost = estimate_tokens(line.render()) + 1
        if cost > budget_tokens:
            keep = max(20, budget_tokens * 3 - 40)
            line = Line(line.index, line.start, line.speaker, line.name, line.text[:keep])
            cost = estimate_tokens(line.render()) + 1
        if current and used + cost > budget_tokens:
            chunks.append(current)
            current, used = [], 0
        current.append(line)
        used += cost
    if current:
        chunks.append(current)
    return chunks


def _instructions(language: str | None, speakers: list[str]) -> str:
    lang = language_name(language)
    return (
        "You write the minutes of a meeting from its transcript. Each transcript line starts"
        " with its number in brackets, then the time and the speaker.\n"
        "Answer with JSON: `summary` (the main points of the whole meeting: 2 to 6 short"
        " sentences, always),"
        " `decisions` (what was decided) and `action_items` (what someone will do: `what`,"
        " `owner`, `due`). Every item has `segments`: the numbers of the lines it comes from.\n"
        "Use only what the transcript says. An owner is one of these speakers:"
        f" {', '.join(speakers)}; leave `owner` empty if nobody was named. Leave `due` empty"
        " unless a date or a deadline is said. If nothing was decided or assigned, give"
        f" empty lists.\nWrite every text in {lang}."
    )


def parse_reply(reply: str) -> dict[str, Any]:
    """The model's JSON (constrained by the schema, but a server may ignore the schema:
    a fenced or chatty reply is read from its first brace). A reply cut off by the token
    limit keeps its complete items: it is closed after the last one that ended."""
    text = reply.strip()
    start = text.find("{")
    if start < 0:
        return {}
    text = text[start:]
    end = text.rfind("}")
    try:
        doc = json.loads(text[: end + 1])
    except ValueError:
        doc = _salvage(text)
    return doc if isinstance(doc, dict) else {}


def _salvage(text: str) -> Any:
    """The longest prefix of `text` that ends an object, closed with the brackets still
    open there; None when there is none."""
    closers = {"{": "}", "[": "]"}
    stack: list[str] = []
    ends: list[tuple[int, str]] = []  # (index after a "}", what closes the rest)
    in_string = escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in closers:
            stack.append(closers[ch])
        elif ch in "}]" and stack:
            stack.pop()
            if ch == "}":
                ends.append((i + 1, "".join(reversed(stack))))
    for cut, closing in reversed(ends):
        try:
            return json.loads(text[:cut] + closing)
        except ValueError:
            continue
    return None


def _fold(text: str) -> str:
    """Lower case, accents off, spaces squeezed: how a due date is looked for."""
    plain = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    return " ".join(re.findall(r"\w+", plain))


def _cited(raw: Any, allowed: set[int]) -> tuple[list[int], list[int]]:
    """(the citations that pass, those that do not)."""
    values = raw if isinstance(raw, list) else []
    good: list[int] = []
    bad: list[int] = []
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool) and v in allowed:
            if v not in good:
                good.append(v)
        elif isinstance(v, int):
            bad.append(v)
    return sorted(good), bad


class Checker:
    """The citation check for one call: what the model was given, who speaks."""

    def __init__(self, given: list[Line], all_lines: list[Line]) -> None:
        self.allowed = {line.index for line in given}
        self.text = {line.index: line.text for line in all_lines}
        self.speakers: dict[str, str] = {}  # folded name or label -> label
        self.display: dict[str, str] = {}  # label -> name as corrected
        for line in all_lines:
            self.speakers[_fold(line.name)] = line.speaker
            self.speakers[_fold(line.speaker)] = line.speaker
            self.display[line.speaker] = line.name
        self.rejected: list[RejectedClaim] = []

    def _reject(self, kind: str, text: str, segments: list[int], reason: str) -> None:
        self.rejected.append(
            RejectedClaim(kind=kind, text=text, segments=segments, reason=reason)  # type: ignore[arg-type]
        )

    def points(self, raw: Any, kind: str) -> list[SummaryPoint]:
        out: list[SummaryPoint] = []
        for item in raw if isinstance(raw, list) else []:
            if not isinstance(item, dict):
                continue
            text = str(item.get("text") or "").strip()
            if not text:
                continue
            good, bad = _cited(item.get("segments"), self.allowed)
            if not good:
                self._reject(kind, text, bad, _why(bad))
                continue
            out.append(SummaryPoint(text=text, segments=good))
        return out

    def actions(self, raw: Any) -> list[ActionItem]:
        out: list[ActionItem] = []
        for item in raw if isinstance(raw, list) else []:
            if not isinstance(item, dict):
                continue
            what = str(item.get("what") or "").strip()
            if not what:
                continue
            good, bad = _cited(item.get("segments"), self.allowed)
            if not good:
                self._reject("action_item", what, bad, _why(bad))
                continue
            owner_raw = str(item.get("owner") or "").strip()
            label = self.speakers.get(_fold(owner_raw)) if owner_raw else None
            if owner_raw and label is None:
                self._reject("owner", owner_raw, good, "not a speaker of this meeting")
            due = str(item.get("due") or "").strip() or None
            if due is not None:
                said = " ".join(_fold(self.text.get(i, "")) for i in good)
                if not _fold(due) or _fold(due) not in said:
                    self._reject("due", due, good, "no cited segment says it")
                    due = None
            out.append(
                ActionItem(
                    what=what,
                    owner=self.display.get(label) if label else None,
                    owner_speaker=label,
                    due=due,
                    segments=good,
                )
            )
        return out


def _why(bad: list[int]) -> str:
    if bad:
        return f"cites segment(s) {', '.join(map(str, bad))}, not among those it was given"
    return "cites no segment"


def _dedupe(items: list[Any], key: Callable[[Any], str]) -> list[Any]:
    seen: set[str] = set()
    out = []
    for item in items:
        k = _fold(key(item))
        if k and k not in seen:
            seen.add(k)
            out.append(item)
    return out


def summarize(
    model: LanguageModel,
    result: MeetingResult,
    *,
    max_tokens: int,
    progress: Callable[[str, int, int], None] | None = None,
) -> Summary:
    """The checked summary of `result` (the result as corrected)."""
    lines = lines_of(result)
    speakers = sorted({line.name for line in lines} | {line.speaker for line in lines})
    system = _instructions(result.language, speakers)
    budget = model.context_tokens - max_tokens - PROMPT_OVERHEAD_TOKENS - estimate_tokens(system)
    chunks = chunks_of(lines, max(budget, 200)) if lines else []
    summary: list[SummaryPoint] = []
    decisions: list[SummaryPoint] = []
    actions: list[ActionItem] = []
    rejected: list[RejectedClaim] = []
    for n, chunk in enumerate(chunks):
        if progress:
            progress("summarize", n, len(chunks) + (len(chunks) > 1))
        messages: list[Message] = [
            {"role": "system", "content": system},
            {"role": "user", "content": "Transcript:\n" + "\n".join(x.render() for x in chunk)},
        ]
        schema = schema_for(SCHEMA, [line.index for line in chunk])
        doc = parse_reply(model.complete(messages, max_tokens=max_tokens, json_schema=schema))
        check = Checker(chunk, lines)
        summary += check.points(doc.get("summary"), "summary")
        decisions += check.points(doc.get("decisions"), "decision")
        actions += check.actions(doc.get("action_items"))
        rejected += check.rejected
    if len(chunks) > 1 and summary:
        if progress:
            progress("summarize", len(chunks), len(chunks) + 1)
        summary, more = _reduce(model, summary, lines, result.language, max_tokens)
        rejected += more
    return Summary(
        job_id=result.job_id,
        language=result.language,
        model=model.model_id,
        summary=_dedupe(summary, lambda p: p.text)[:MAX_POINTS],
        decisions=_dedupe(decisions, lambda p: p.text),
        action_items=_dedupe(actions, lambda a: a.what),
        rejected=rejected,
        chunks=len(chunks),
        segment_count=len(result.segments),
    )


def _reduce(
    model: LanguageModel,
    points: list[SummaryPoint],
    lines: list[Line],
    language: str | None,
    max_tokens: int,
) -> tuple[list[SummaryPoint], list[RejectedClaim]]:
    """The chunks' points merged into one short list; a merged point may cite only what
    the points it merges cited. When the model's merge passes no point, the chunks'
    points stand (they were checked already)."""
    listed = "\n".join(f"- {p.text} {json.dumps(p.segments)}" for p in points)
    messages: list[Message] = [
        {
            "role": "system",
            "content": (
                "Merge these partial summaries of one meeting into at most 6 short"
                " sentences covering the main points. Each point ends with the numbers of"
                " the transcript lines it cites; give each merged sentence in `segments`"
                f" the numbers of the points it merges. Write in {language_name(language)}."
            ),
        },
        {"role": "user", "content": listed},
    ]
    cited = {i for p in points for i in p.segments}
    schema = schema_for(REDUCE_SCHEMA, sorted(cited))
    doc = parse_reply(model.complete(messages, max_tokens=max_tokens, json_schema=schema))
    check = Checker([line for line in lines if line.index in cited], lines)
    merged = check.points(doc.get("summary"), "summary")
    return (merged or points), check.rejected
