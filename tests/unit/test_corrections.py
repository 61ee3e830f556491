"""core.corrections: corrections replayed over a MeetingResult, artifacts untouched."""

from __future__ import annotations

import math
from typing import Any

from core import formats
from core.artifacts import MeetingResult, ProvenanceEntry, ResultSegment, ResultSpeaker
from core.corrections import (
    RENAME_SPEAKER,
    Correction,
    apply_corrections,
    blend_voiceprints,
)
from core.graph import DEFAULT_GRAPH

DIARIZE_SHA = "d" * 64


def meeting() -> MeetingResult:
    return MeetingResult(
        job_id="job-1",
        duration_s=10.0,
        language="en",
        speakers=[
            ResultSpeaker(id="S1", name="Bob", speaker_id="vp-bob", confidence=0.7, talk_time_s=4),
            ResultSpeaker(id="S2", talk_time_s=3.0),
        ],
        segments=[
            ResultSegment(start=0.0, end=2.0, speaker="S1", text="Hello.", words=[]),
            ResultSegment(start=2.0, end=4.0, speaker="S2", text="Hi.", words=[]),
            ResultSegment(start=4.0, end=6.0, speaker="S1", text="Bye.", words=[]),
        ],
        provenance={"diarize": ProvenanceEntry(uri="file:///d.json", sha256=DIARIZE_SHA)},
    )


def corr(kind: str, **payload: Any) -> Correction:
    return Correction(id=f"c-{kind}", job_id="job-1", kind=kind, payload=payload)


def rename(speaker: str, name: str, **more: Any) -> Correction:
    return corr(RENAME_SPEAKER, speaker=speaker, name=name, **more)


def test_no_corrections_is_the_same_result() -> None:
    original = meeting()
    assert apply_corrections(original, [], DEFAULT_GRAPH) == original


def test_rename_applies_everywhere_and_leaves_the_input_alone() -> None:
    original = meeting()
    before = original.model_dump()
    fixed = apply_corrections(original, [rename("S2", "Alice")], DEFAULT_GRAPH)
    assert original.model_dump() == before  # a copy, not an edit in place
    assert [(s.id, s.name) for s in fixed.speakers] == [("S1", "Bob"), ("S2", "Alice")]
    txt = formats.to_txt(fixed)
    assert "Alice: Hi." in txt and "Speaker 2" not in txt
    assert formats.to_srt(fixed).count("Bob:") == 2
    assert "<v Alice>Hi." in formats.to_vtt(fixed)


def test_rename_replaces_a_voiceprint_guess() -> None:
    fixed = apply_corrections(meeting(), [rename("S1", "Carol")], DEFAULT_GRAPH)
    s1 = fixed.speakers[0]
    assert (s1.name, s1.speaker_id, s1.confidence) == ("Carol", None, None)
    linked = apply_corrections(
        meeting(), [rename("S1", "Carol", speaker_id="vp-carol")], DEFAULT_GRAPH
    )
    assert linked.speakers[0].speaker_id == "vp-carol"


def test_later_corrections_win() -> None:
    fixed = apply_corrections(
        meeting(), [rename("S2", "Alice"), rename("S2", "Alicia")], DEFAULT_GRAPH
    )
    assert fixed.speakers[1].name == "Alicia"


def test_unknown_label_kind_or_bad_payload_is_skipped() -> None:
    original = meeting()
    skipped = [
        rename("S9", "Nobody"),
        corr("reassign_words", start=0.0, end=1.0, speaker="S2"),
        corr(RENAME_SPEAKER, speaker="S1"),  # no name
        rename("S1", ""),
    ]
    assert apply_corrections(original, skipped, DEFAULT_GRAPH) == original


def test_rename_of_an_older_diarization_no_longer_applies() -> None:
    # After a diarize replay, "S2" may be someone else: a rename pinned to the old
    # diarization is skipped; one pinned to the current one applies.
    stale = rename("S2", "Alice", diarize_sha256="0" * 64)
    current = rename("S1", "Dave", diarize_sha256=DIARIZE_SHA)
    fixed = apply_corrections(meeting(), [stale, current], DEFAULT_GRAPH)
    assert [s.name for s in fixed.speakers] == ["Dave", None]


def test_blend_voiceprints_is_a_unit_mean() -> None:
    blended = blend_voiceprints([2.0, 0.0], [0.0, 3.0])
    assert math.isclose(blended[0], blended[1])
    assert math.isclose(math.hypot(*blended), 1.0)
    assert blend_voiceprints([1.0, 0.0, 0.0], [0.0, 2.0]) == [0.0, 1.0]  # other size: the new


def test_segment_corrections_apply_only_to_the_merged_result_they_were_made_on() -> None:
    """After a replay the merged result is another one: its segments are not those the
    old corrections' indices point at, so those corrections are left out (a rename, which
    names a speaker label, still applies)."""
    from core.corrections import FIX_TEXT

    made_on = "a" * 64
    fix = Correction(
        id="c-1",
        job_id="job-1",
        kind=FIX_TEXT,
        payload={"segment": 1, "text": "Hello there.", "merge_sha256": made_on},
    )
    named = rename("S2", "Alice")
    same = apply_corrections(meeting(), [fix, named], DEFAULT_GRAPH, basis=made_on)
    assert same.segments[1].text == "Hello there."
    replayed = apply_corrections(meeting(), [fix, named], DEFAULT_GRAPH, basis="b" * 64)
    assert replayed.segments[1].text == "Hi."
    assert {s.id: s.name for s in replayed.speakers}["S2"] == "Alice"
    # Without a known basis (an older caller), the correction applies as before.
    assert apply_corrections(meeting(), [fix], DEFAULT_GRAPH).segments[1].text == "Hello there."
