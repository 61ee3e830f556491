"""core.corrections `reassign` and `fix_text`: replayed on read, validated against the result."""

from __future__ import annotations

from typing import Any

import pytest

from core.artifacts import MeetingResult, ProvenanceEntry, ResultSegment, ResultSpeaker, ResultWord
from core.corrections import (
    FIX_TEXT,
    REASSIGN,
    Correction,
    CorrectionOutOfRange,
    apply_corrections,
    check_fix_text,
    check_reassign,
)
from core.graph import DEFAULT_GRAPH

MERGE_SHA = "m" * 64


def words(speaker: str, start: float, *texts: str) -> list[ResultWord]:
    return [
        ResultWord(
            start=start + i, end=start + i + 0.8, word=f" {t}", probability=0.9, speaker=speaker
        )
        for i, t in enumerate(texts)
    ]


def meeting() -> MeetingResult:
    return MeetingResult(
        job_id="job-1",
        duration_s=10.0,
        language="en",
        speakers=[ResultSpeaker(id="S1", talk_time_s=4.0), ResultSpeaker(id="S2", talk_time_s=3.0)],
        segments=[
            ResultSegment(
                start=0.0,
                end=3.8,
                speaker="S1",
                text="one two three four",
                words=words("S1", 0.0, "one", "two", "three", "four"),
            ),
            ResultSegment(
                start=5.0, end=6.8, speaker="S2", text="yes no", words=words("S2", 5.0, "yes", "no")
            ),
        ],
        provenance={"merge": ProvenanceEntry(uri="file:///m.json", sha256=MERGE_SHA)},
    )


def corr(kind: str, **payload: Any) -> Correction:
    return Correction(id=f"c-{kind}", job_id="job-1", kind=kind, payload=payload)


def test_reassign_a_whole_segment() -> None:
    original = meeting()
    before = original.model_dump()
    fixed = apply_corrections(original, [corr(REASSIGN, segment=1, speaker="S1")], DEFAULT_GRAPH)
    assert original.model_dump() == before
    assert [s.speaker for s in fixed.segments] == ["S1", "S1"]
    assert {w.speaker for w in fixed.segments[1].words} == {"S1"}


def test_reassign_a_word_range_splits_the_segment() -> None:
    fixed = apply_corrections(
        meeting(),
        [corr(REASSIGN, segment=0, word_start=1, word_end=3, speaker="S2")],
        DEFAULT_GRAPH,
    )
    assert [(s.speaker, s.text) for s in fixed.segments] == [
        ("S1", "one"),
        ("S2", "two three"),
        ("S1", "four"),
        ("S2", "yes no"),
    ]
    assert fixed.segments[1].start == 1.0 and fixed.segments[1].end == 2.8


def test_reassign_to_a_new_label_adds_the_speaker() -> None:
    fixed = apply_corrections(meeting(), [corr(REASSIGN, segment=1, speaker="S3")], DEFAULT_GRAPH)
    assert [s.id for s in fixed.speakers] == ["S1", "S2", "S3"]


def test_reassign_for_another_merge_is_skipped() -> None:
    """`basis` is the sha256 of the merged result being corrected (the gateway passes the
    current merge artifact's); a reassign made on another one is left out."""
    c = corr(REASSIGN, segment=1, speaker="S1", merge_sha256="x" * 64)
    assert apply_corrections(meeting(), [c], DEFAULT_GRAPH, basis=MERGE_SHA) == meeting()
    same = corr(REASSIGN, segment=1, speaker="S1", merge_sha256=MERGE_SHA)
    fixed = apply_corrections(meeting(), [same], DEFAULT_GRAPH, basis=MERGE_SHA)
    assert fixed.segments[1].speaker == "S1"


def test_bad_ranges_are_refused_by_the_check_and_skipped_on_read() -> None:
    m = meeting()
    for payload in (
        {"segment": 2, "speaker": "S1"},
        {"segment": 0, "speaker": "S1", "word_start": 3, "word_end": 3},
        {"segment": 0, "speaker": "S1", "word_start": 2, "word_end": 5},
        {"segment": 0, "speaker": "S1", "word_start": 1},
    ):
        with pytest.raises(CorrectionOutOfRange):
            check_reassign(m, payload)
        assert apply_corrections(m, [corr(REASSIGN, **payload)], DEFAULT_GRAPH) == m
    with pytest.raises(CorrectionOutOfRange):
        check_fix_text(m, {"segment": 1, "word": 2, "text": "x"})


def test_fix_a_segments_text() -> None:
    fixed = apply_corrections(
        meeting(), [corr(FIX_TEXT, segment=1, text="Yes, no.")], DEFAULT_GRAPH
    )
    assert fixed.segments[1].text == "Yes, no."
    assert fixed.segments[1].words == []  # the old timings belong to the old words
    assert (fixed.segments[1].start, fixed.segments[1].end) == (5.0, 6.8)


def test_fix_one_word_keeps_timings() -> None:
    fixed = apply_corrections(
        meeting(), [corr(FIX_TEXT, segment=0, word=2, text="tree")], DEFAULT_GRAPH
    )
    assert fixed.segments[0].text == "one two tree four"
    assert fixed.segments[0].words[2].start == 2.0


def test_corrections_apply_in_order() -> None:
    fixed = apply_corrections(
        meeting(),
        [
            corr(REASSIGN, segment=0, word_start=0, word_end=1, speaker="S2"),
            corr(FIX_TEXT, segment=1, text="two three four"),  # index 1 after the split
        ],
        DEFAULT_GRAPH,
    )
    assert [(s.speaker, s.text) for s in fixed.segments] == [
        ("S2", "one"),
        ("S1", "two three four"),
        ("S2", "yes no"),
    ]
