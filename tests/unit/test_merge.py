"""merge: words get the speaker of the turns they overlap most; segments split on change."""

from __future__ import annotations

import pytest

from core.artifacts import (
    Diarization,
    DiarizedSpeaker,
    Identification,
    MeetingResult,
    SpeakerMatch,
    Transcript,
    TranscriptSegment,
    Turn,
)
from stages import merge
from tests.fakes import segment


def diarization(*turns: tuple[float, float, str]) -> Diarization:
    ts = [Turn(start=s, end=e, speaker=sp) for s, e, sp in turns]
    labels: dict[str, float] = {}
    for t in ts:
        labels[t.speaker] = labels.get(t.speaker, 0.0) + t.end - t.start
    return Diarization(
        turns=ts,
        exclusive_turns=ts,
        speakers=[DiarizedSpeaker(label=k, talk_time_s=v) for k, v in labels.items()],
    )


def transcript(*segments: TranscriptSegment) -> Transcript:
    return Transcript(
        language="en", language_probability=1.0, duration_s=10.0, segments=list(segments)
    )


def merged(t: Transcript, d: Diarization, ident: Identification | None = None) -> MeetingResult:
    return merge.run("job-1", 10.0, t, d, ident, {})


def test_words_follow_turns_and_segments_split_on_speaker_change() -> None:
    t = transcript(
        segment(("Hello", 0.0, 0.5), ("there.", 0.5, 1.0), ("Hi", 1.2, 1.5), ("Bob.", 1.5, 1.9))
    )
    d = diarization((0.0, 1.1, "S1"), (1.1, 2.0, "S2"))
    result = merged(t, d)
    assert [(s.speaker, s.text) for s in result.segments] == [
        ("S1", "Hello there."),
        ("S2", "Hi Bob."),
    ]
    assert result.segments[1].start == 1.2 and result.segments[1].end == 1.9
    assert [w.speaker for w in result.segments[0].words] == ["S1", "S1"]


def test_word_goes_to_the_turn_it_overlaps_most() -> None:
    t = transcript(segment(("straddling", 0.8, 1.4)))
    d = diarization((0.0, 1.0, "S1"), (1.0, 3.0, "S2"))  # 0.2 s vs 0.4 s of overlap
    assert merged(t, d).segments[0].speaker == "S2"


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (1.2, 1.3, "S1"),  # gap after S1 (0.2 s away) and before S2 (1.7 s away)
        (2.8, 2.9, "S2"),  # closer to S2
        (9.0, 9.5, "S2"),  # after every turn
        (0.0, 0.1, "S1"),  # before every turn
        (0.75, 0.75, "S1"),  # zero-length word inside a turn
    ],
)
def test_word_outside_every_turn_takes_the_nearest(start: float, end: float, expected: str) -> None:
    t = transcript(segment(("word", start, end)))
    d = diarization((0.5, 1.0, "S1"), (3.0, 4.0, "S2"))
    assert merged(t, d).segments[0].speaker == expected


def test_long_earlier_turn_still_counts_as_nearest() -> None:
    # S1's turn starts first but ends last: nearest-before must use the latest end.
    t = transcript(segment(("late", 6.1, 6.3)))
    d = diarization((0.0, 6.0, "S1"), (1.0, 2.0, "S2"))
    assert merged(t, d).segments[0].speaker == "S1"


def test_no_turns_means_one_speaker() -> None:
    t = transcript(segment(("Alone", 0.0, 0.5), ("here.", 0.5, 1.0)))
    result = merged(t, Diarization(turns=[], exclusive_turns=[], speakers=[]))
    assert [s.speaker for s in result.segments] == ["S1"]
    assert [(s.id, s.talk_time_s) for s in result.speakers] == [("S1", 1.0)]


def test_whisper_segment_boundaries_are_kept() -> None:
    t = transcript(segment(("One.", 0.0, 0.5)), segment(("Two.", 0.6, 1.0)))
    result = merged(t, diarization((0.0, 2.0, "S1")))
    assert [s.text for s in result.segments] == ["One.", "Two."]


def test_overlapping_turns_fall_back_when_no_exclusive_turns() -> None:
    d = diarization((0.0, 2.0, "S1"), (1.0, 4.0, "S2"))
    d = d.model_copy(update={"exclusive_turns": []})
    t = transcript(segment(("a", 0.1, 0.5), ("b", 2.5, 3.0)))
    assert [s.speaker for s in merged(t, d).segments] == ["S1", "S2"]


def test_segment_without_word_timings_is_placed_whole() -> None:
    seg = TranscriptSegment(start=3.0, end=3.8, text=" No words. ", words=[])
    result = merged(transcript(seg), diarization((0.0, 1.0, "S1"), (2.9, 4.0, "S2")))
    assert [(s.speaker, s.text, s.words) for s in result.segments] == [("S2", "No words.", [])]


def test_speakers_carry_identification_and_talk_time() -> None:
    t = transcript(segment(("Hi", 0.0, 0.5)), segment(("Yo", 2.0, 2.5)))
    d = diarization((0.0, 1.0, "S1"), (1.5, 3.0, "S2"), (5.0, 6.0, "S3"))
    ident = Identification(
        threshold=0.6,
        matches=[
            SpeakerMatch(label="S1", speaker_id="vp-1", name="Alice", score=0.91),
            SpeakerMatch(label="S2", score=0.3),  # below threshold: unnamed
            SpeakerMatch(label="S3"),
        ],
    )
    result = merged(t, d, ident)
    speakers = {s.id: s for s in result.speakers}
    assert list(speakers) == ["S1", "S2", "S3"]  # silent S3 still listed, with its talk time
    assert (speakers["S1"].name, speakers["S1"].speaker_id, speakers["S1"].confidence) == (
        "Alice",
        "vp-1",
        0.91,
    )
    assert (speakers["S2"].name, speakers["S2"].confidence) == (None, None)
    assert speakers["S2"].talk_time_s == 1.5 and speakers["S3"].talk_time_s == 1.0
    assert result.language == "en" and result.job_id == "job-1"


def test_empty_transcript_gives_empty_segments() -> None:
    result = merged(transcript(), diarization((0.0, 1.0, "S1")))
    assert result.segments == [] and [s.id for s in result.speakers] == ["S1"]
    MeetingResult.model_validate_json(result.model_dump_json())  # round-trips


def test_many_words_and_turns_are_fast() -> None:
    # An hour-long meeting: 3600 turns, 36000 words; the turn index keeps this linear-ish.
    turns = [(float(i), float(i) + 1.0, f"S{i % 4 + 1}") for i in range(3600)]
    ws = [(f"w{i}", i * 0.1, i * 0.1 + 0.05) for i in range(36000)]
    segs = [segment(*ws[i : i + 20]) for i in range(0, len(ws), 20)]
    result = merged(transcript(*segs), diarization(*turns))
    assert len(result.segments) >= 1800


# ---------------------------------------------------------------- sentence-level smoothing


def test_a_short_run_inside_a_sentence_takes_the_sentences_speaker() -> None:
    # The turn boundary is 0.3 s early: "the" and "end" fall into S2's turn by overlap.
    t = transcript(
        segment(
            ("We", 0.0, 0.3),
            ("reached", 0.3, 0.8),
            ("the", 0.8, 1.0),
            ("end", 1.0, 1.3),
            ("today.", 1.3, 1.9),
            ("Right.", 2.5, 2.9),
        )
    )
    d = diarization((0.0, 0.8, "S1"), (0.8, 1.3, "S2"), (1.3, 2.2, "S1"), (2.2, 3.0, "S2"))
    smoothed = merge.run("job-1", 10.0, t, d, None, {}, smooth_max_run_s=1.0)
    assert [(s.speaker, s.text) for s in smoothed.segments] == [
        ("S1", "We reached the end today."),
        ("S2", "Right."),
    ]
    assert [s.speaker for s in merged(t, d).segments] == ["S1", "S2", "S1", "S2"]  # default


def test_a_long_run_or_a_sentence_of_its_own_is_kept() -> None:
    t = transcript(
        segment(
            ("So", 0.0, 0.3),
            ("I", 0.3, 0.5),
            ("think", 0.5, 2.0),
            ("we", 2.0, 2.5),
            ("should", 2.5, 3.0),
            ("go.", 3.0, 3.2),
            ("Yes.", 3.3, 3.6),
            ("Fine", 3.7, 4.0),
            ("then.", 4.0, 4.5),
        )
    )
    d = diarization(
        (0.0, 0.5, "S1"), (0.5, 2.0, "S2"), (2.0, 3.25, "S1"), (3.25, 3.65, "S2"), (3.65, 5.0, "S1")
    )
    # "think" lasts 1.5 s: long enough to be believed; "Yes." is a sentence of its own.
    smoothed = merge.run("job-1", 10.0, t, d, None, {}, smooth_max_run_s=1.0)
    assert [(s.speaker, s.text) for s in smoothed.segments] == [
        ("S1", "So I"),
        ("S2", "think"),
        ("S1", "we should go."),
        ("S2", "Yes."),
        ("S1", "Fine then."),
    ]
