"""Cut a speaker-attributed meeting result into passages: what search indexes and returns.

A passage is one speaker's turn (consecutive segments of one speaker), because that is the
unit a person means by "the moment where Alice said ..."; a turn longer than `max_chars` is
split into a few sentences at a time, so one long monologue does not become a single vector
that matches everything a little and nothing well (e5-small and BGE-M3 both read a few
hundred words at most with full attention). Each passage keeps the segments it came from
(first index, every index), its start and end time, and the speaker as corrected: the
result given here is the one people read, with renames and text fixes applied
(`core.corrections.apply_corrections`), so search shows what the transcript shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from core.artifacts import MeetingResult, Passage, ResultSegment

DEFAULT_MAX_CHARS = 560
# A sentence ends at . ! ? … (and their CJK forms) followed by space, or at the text's end.
_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+")


@dataclass
class _Piece:
    """A sentence-or-segment-sized bit of one turn, with the segment it comes from."""

    segment: int
    start: float
    end: float
    text: str


def cut_passages(result: MeetingResult, max_chars: int = DEFAULT_MAX_CHARS) -> list[Passage]:
    """The passages of `result` in time order, numbered from 0."""
    if max_chars < 50:
        raise ValueError("max_chars must be at least 50")
    names = {s.id: s.name for s in result.speakers}
    passages: list[Passage] = []
    for speaker, turn in _turns(result.segments):
        for chunk in _chunks(turn, max_chars):
            indices = sorted({p.segment for p in chunk})
            passages.append(
                Passage(
                    index=len(passages),
                    segment_index=indices[0],
                    segment_indices=indices,
                    start=round(chunk[0].start, 3),
                    end=round(max(p.end for p in chunk), 3),
                    speaker_id=speaker,
                    speaker_name=names.get(speaker),
                    text=" ".join(p.text for p in chunk),
                )
            )
    return passages


def _turns(segments: list[ResultSegment]) -> Iterator[tuple[str, list[_Piece]]]:
    """Consecutive non-empty segments of one speaker, as pieces (long segments split)."""
    speaker: str | None = None
    turn: list[_Piece] = []
    for i, seg in enumerate(segments):
        text = " ".join(seg.text.split())
        if not text:
            continue
        if seg.speaker != speaker and turn:
            assert speaker is not None
            yield speaker, turn
            turn = []
        speaker = seg.speaker
        turn.extend(_pieces(i, seg, text))
    if turn and speaker is not None:
        yield speaker, turn


def _pieces(index: int, seg: ResultSegment, text: str) -> list[_Piece]:
    """A segment as its sentences. Each keeps the segment's index; its times are the
    segment's, narrowed in proportion to where the sentence sits in the text (the words'
    own timings are gone once a person fixed the text, so this is the one rule for both)."""
    sentences = [s for s in _SENTENCE_END.split(text) if s]
    if len(sentences) <= 1:
        return [_Piece(index, seg.start, seg.end, text)]
    span = max(seg.end - seg.start, 0.0)
    total = sum(len(s) for s in sentences)
    pieces, done = [], 0
    for s in sentences:
        start = seg.start + span * done / total
        done += len(s)
        pieces.append(_Piece(index, start, seg.start + span * done / total, s))
    return pieces


def _chunks(turn: list[_Piece], max_chars: int) -> Iterator[list[_Piece]]:
    """Pieces grouped greedily up to `max_chars` (a piece longer than that stands alone,
    cut at word boundaries)."""
    chunk: list[_Piece] = []
    size = 0
    for piece in turn:
        for part in _fit(piece, max_chars):
            extra = len(part.text) + (1 if chunk else 0)
            if chunk and size + extra > max_chars:
                yield chunk
                chunk, size, extra = [], 0, len(part.text)
            chunk.append(part)
            size += extra
    if chunk:
        yield chunk


def _fit(piece: _Piece, max_chars: int) -> list[_Piece]:
    """A piece no longer than `max_chars`, or its words cut into such pieces."""
    if len(piece.text) <= max_chars:
        return [piece]
    parts: list[str] = []
    line = ""
    for word in piece.text.split():
        if line and len(line) + 1 + len(word) > max_chars:
            parts.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        parts.append(line)
    span = max(piece.end - piece.start, 0.0)
    total = sum(len(p) for p in parts)
    out, done = [], 0
    for p in parts:
        start = piece.start + span * done / total
        done += len(p)
        out.append(_Piece(piece.segment, start, piece.start + span * done / total, p))
    return out
