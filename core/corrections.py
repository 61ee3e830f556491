"""A person's corrections to a meeting result, applied on read; the artifacts stay as made.

Each correction is a record of a `kind` with a JSON `payload`. `apply_corrections` replays
them in order over a `MeetingResult` and returns a corrected copy: one small function per
kind, looked up in `APPLIERS`, so a new kind (reassign words, fix text) is one function and
one entry. Undoing one is deleting its record; `undo_blocked_by` says when that would
move later corrections onto other segments.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.artifacts import Diarization, MeetingResult, ResultSegment, ResultSpeaker, ResultWord
from core.graph import StageGraph

RENAME_SPEAKER = "rename_speaker"


class Correction(BaseModel):
    """One stored correction, as the job store returns it."""

    id: str
    job_id: str
    kind: str
    payload: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None


class RenameSpeaker(BaseModel):
    """Payload of `rename_speaker`: label `speaker` ("S1") is `name` everywhere in the job.

    `diarize_sha256` pins the diarization the label belongs to: after a replay of the
    stage that makes it, "S1" may be someone else, so the rename no longer applies.
    """

    model_config = ConfigDict(extra="ignore")

    speaker: str
    name: str = Field(min_length=1, max_length=200)
    speaker_id: str | None = None
    diarize_sha256: str | None = None


def _rename_speaker(
    result: MeetingResult, payload: dict[str, Any], graph: StageGraph
) -> MeetingResult:
    rename = RenameSpeaker.model_validate(payload)
    # The result's provenance is keyed by stage: the diarization is the producer's entry.
    basis = result.provenance.get(graph.producer(Diarization).name)
    if rename.diarize_sha256 and basis is not None and basis.sha256 != rename.diarize_sha256:
        return result
    if not any(s.id == rename.speaker for s in result.speakers):
        return result
    speakers = [
        s.model_copy(
            update={
                "name": rename.name,
                "speaker_id": rename.speaker_id,
                # A person said who this is: no longer a guess from a voiceprint.
                "confidence": None,
                "suggestion": None,
            }
        )
        if s.id == rename.speaker
        else s
        for s in result.speakers
    ]
    return result.model_copy(update={"speakers": speakers})


class CorrectionOutOfRange(ValueError):
    """A correction points at a segment or word the result does not have."""


class Reassign(BaseModel):
    """Payload of `reassign`: segment `segment` (index in the result as corrected so far),
    or only its words `[word_start, word_end)`, was said by `speaker` (a label, "S2").

    The segment is split where the speaker changes; the words keep their timings.
    """

    model_config = ConfigDict(extra="ignore")

    segment: int = Field(ge=0)
    speaker: str = Field(min_length=1, max_length=64)
    word_start: int | None = Field(default=None, ge=0)
    word_end: int | None = Field(default=None, ge=1)
    merge_sha256: str | None = None  # the merged result the indices refer to


class FixText(BaseModel):
    """Payload of `fix_text`: segment `segment` reads `text`, or only its word `word` does.

    A whole-segment fix drops the segment's word timings (the new words have none); a word
    fix keeps every timing and rebuilds the segment's text from its words.
    """

    model_config = ConfigDict(extra="ignore")

    segment: int = Field(ge=0)
    text: str = Field(min_length=1, max_length=10_000)
    word: int | None = Field(default=None, ge=0)
    merge_sha256: str | None = None


def check_reassign(result: MeetingResult, payload: dict[str, Any]) -> Reassign:
    """The payload, validated against `result`; CorrectionOutOfRange says what is wrong."""
    r = Reassign.model_validate(payload)
    if r.segment >= len(result.segments):
        raise CorrectionOutOfRange(
            f"segment: {r.segment} is out of range (the result has {len(result.segments)})"
        )
    if (r.word_start is None) != (r.word_end is None):
        raise CorrectionOutOfRange("word_start and word_end: give both or neither")
    n = len(result.segments[r.segment].words)
    if r.word_start is not None and r.word_end is not None:
        if n == 0:
            raise CorrectionOutOfRange(f"segment {r.segment} has no word timings")
        if not r.word_start < r.word_end <= n:
            raise CorrectionOutOfRange(
                f"words [{r.word_start}, {r.word_end}) are out of range"
                f" (segment {r.segment} has {n} words)"
            )
    return r


def check_fix_text(result: MeetingResult, payload: dict[str, Any]) -> FixText:
    f = FixText.model_validate(payload)
    if f.segment >= len(result.segments):
        raise CorrectionOutOfRange(
            f"segment: {f.segment} is out of range (the result has {len(result.segments)})"
        )
    n = len(result.segments[f.segment].words)
    if f.word is not None and f.word >= n:
        raise CorrectionOutOfRange(
            f"word: {f.word} is out of range (segment {f.segment} has {n} words)"
        )
    if not f.text.strip():
        raise CorrectionOutOfRange("text: must not be blank")
    return f


def _segment_of(words: list[ResultWord], speaker: str) -> ResultSegment:
    return ResultSegment(
        start=words[0].start,
        end=words[-1].end,
        speaker=speaker,
        text="".join(w.word for w in words).strip(),
        words=words,
    )


def _reassign(result: MeetingResult, payload: dict[str, Any], graph: StageGraph) -> MeetingResult:
    r = check_reassign(result, payload)
    seg = result.segments[r.segment]
    if r.word_start is None or r.word_end is None:
        words = [w.model_copy(update={"speaker": r.speaker}) for w in seg.words]
        replaced = [seg.model_copy(update={"speaker": r.speaker, "words": words})]
    else:
        a, b = r.word_start, r.word_end
        moved = [w.model_copy(update={"speaker": r.speaker}) for w in seg.words[a:b]]
        parts = [(seg.words[:a], seg.speaker), (moved, r.speaker), (seg.words[b:], seg.speaker)]
        replaced = [_segment_of(ws, spk) for ws, spk in parts if ws]
    segments = [*result.segments[: r.segment], *replaced, *result.segments[r.segment + 1 :]]
    speakers = list(result.speakers)
    if not any(s.id == r.speaker for s in speakers):  # a speaker diarization missed
        speakers.append(ResultSpeaker(id=r.speaker, talk_time_s=0.0))
    return result.model_copy(update={"segments": segments, "speakers": speakers})


def _fix_text(result: MeetingResult, payload: dict[str, Any], graph: StageGraph) -> MeetingResult:
    f = check_fix_text(result, payload)
    seg = result.segments[f.segment]
    if f.word is None:
        fixed = seg.model_copy(update={"text": f.text.strip(), "words": []})
    else:
        old = seg.words[f.word]
        lead = " " if old.word.startswith(" ") or f.word > 0 else ""
        words = list(seg.words)
        words[f.word] = old.model_copy(update={"word": lead + f.text.strip()})
        fixed = seg.model_copy(
            update={"words": words, "text": "".join(w.word for w in words).strip()}
        )
    segments = [*result.segments[: f.segment], fixed, *result.segments[f.segment + 1 :]]
    return result.model_copy(update={"segments": segments})


REASSIGN = "reassign"
FIX_TEXT = "fix_text"

# (the result so far, the payload, the graph the job ran) -> the result corrected
Applier = Callable[[MeetingResult, dict[str, Any], StageGraph], MeetingResult]
APPLIERS: dict[str, Applier] = {
    RENAME_SPEAKER: _rename_speaker,
    REASSIGN: _reassign,
    FIX_TEXT: _fix_text,
}


# Kinds whose payload points at a segment by its index in the result as corrected so far.
SEGMENT_KINDS = frozenset({REASSIGN, FIX_TEXT})


def apply_corrections(
    result: MeetingResult,
    corrections: Sequence[Correction],
    graph: StageGraph,
    basis: str | None = None,
) -> MeetingResult:
    """The result with every correction applied, oldest first (a later one wins).

    `graph` is the deployment's: it says which stage made which artifact. `basis` is the
    sha256 of the merged result being corrected. A segment correction recorded against
    another merged result (the job was replayed since) is skipped: its indices point at
    that result's segments, not these. Unknown kinds and payloads that no longer fit are
    skipped too, not fatal: a result must always be readable, and a newer gateway may have
    written kinds this one does not know.
    """
    for correction in corrections:
        applier = APPLIERS.get(correction.kind)
        if applier is None or _other_basis(correction, basis):
            continue
        try:
            result = applier(result, correction.payload, graph)
        except (ValidationError, CorrectionOutOfRange):
            continue
    return result


def _other_basis(correction: Correction, basis: str | None) -> bool:
    made_on = correction.payload.get("merge_sha256")
    return bool(correction.kind in SEGMENT_KINDS and made_on and basis and made_on != basis)


def undo_blocked_by(
    result: MeetingResult,
    corrections: Sequence[Correction],
    correction_id: str,
    graph: StageGraph,
    basis: str | None = None,
) -> list[Correction]:
    """The later corrections that undoing `correction_id` alone would misplace.

    A correction that changed the number of segments (a reassign of some of a segment's
    words splits it) shifts the index of every segment after it; without it, the later
    segment corrections would land on other segments. Those are to be undone first.
    Empty when the undo is safe (or the id is not among `corrections`).
    """
    at = next((i for i, c in enumerate(corrections) if c.id == correction_id), None)
    if at is None:
        return []
    later = [
        c for c in corrections[at + 1 :] if c.kind in SEGMENT_KINDS and not _other_basis(c, basis)
    ]
    if not later:
        return []
    before = apply_corrections(result, corrections[:at], graph, basis)
    after = apply_corrections(before, corrections[at : at + 1], graph, basis)
    return later if len(after.segments) != len(before.segments) else []


def blend_voiceprints(old: Sequence[float], new: Sequence[float]) -> list[float]:
    """Mean of two L2-normalised embeddings, normalised again (both from the same model)."""
    if len(old) != len(new):
        return _unit(new)
    a, b = _unit(old), _unit(new)
    return _unit([x + y for x, y in zip(a, b, strict=True)])


def _unit(v: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v))
    return [float(x) / norm for x in v] if norm > 0 else [float(x) for x in v]
