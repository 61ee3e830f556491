"""search.passages: a corrected meeting result cut into speaker-attributed passages."""

from __future__ import annotations

from core.artifacts import MeetingResult, ResultSegment, ResultSpeaker
from core.corrections import FIX_TEXT, RENAME_SPEAKER, Correction, apply_corrections
from core.graph import DEFAULT_GRAPH
from search.passages import cut_passages


def seg(start: float, end: float, speaker: str, text: str) -> ResultSegment:
    return ResultSegment(start=start, end=end, speaker=speaker, text=text, words=[])


def meeting(segments: list[ResultSegment]) -> MeetingResult:
    return MeetingResult(
        job_id="job-1",
        duration_s=max((s.end for s in segments), default=0.0),
        language="en",
        speakers=[
            ResultSpeaker(id="S1", name="Alice", talk_time_s=1.0),
            ResultSpeaker(id="S2", talk_time_s=1.0),
        ],
        segments=segments,
    )


def test_a_turn_is_consecutive_segments_of_one_speaker() -> None:
    result = meeting(
        [
            seg(0.0, 2.0, "S1", " Hello everyone."),
            seg(2.0, 4.5, "S1", "Let us start with the budget."),
            seg(4.5, 6.0, "S2", "Sure."),
            seg(6.0, 7.0, "S2", "   "),  # nothing said: no passage, no index
            seg(7.0, 9.0, "S1", "Who owns the release?"),
        ]
    )
    passages = cut_passages(result)
    assert [(p.speaker_id, p.segment_indices) for p in passages] == [
        ("S1", [0, 1]),
        ("S2", [2]),
        ("S1", [4]),
    ]
    first = passages[0]
    assert first.text == "Hello everyone. Let us start with the budget."
    assert (first.start, first.end, first.segment_index) == (0.0, 4.5, 0)
    assert first.speaker_name == "Alice"
    assert passages[1].speaker_name is None
    assert [p.index for p in passages] == [0, 1, 2]


def test_a_long_turn_is_split_into_sentences_that_keep_their_segments_and_times() -> None:
    sentence = "This sentence is about the pilot budget and the release plan for spring."
    segments = [seg(10.0 * i, 10.0 * i + 9.5, "S1", f"{sentence} {sentence}") for i in range(8)]
    passages = cut_passages(meeting(segments), max_chars=200)
    assert len(passages) > 4
    assert all(len(p.text) <= 200 for p in passages)
    # Every segment is covered, in order, and no words are lost or doubled.
    covered = [i for p in passages for i in p.segment_indices]
    assert sorted(set(covered)) == list(range(8))
    assert " ".join(p.text for p in passages) == " ".join(s.text for s in segments)
    for p in passages:
        first = segments[p.segment_index]
        last = segments[p.segment_indices[-1]]
        assert first.start <= p.start < p.end <= last.end
        assert p.segment_index == p.segment_indices[0]
    starts = [p.start for p in passages]
    assert starts == sorted(starts)


def test_one_segment_longer_than_a_passage_is_cut_at_sentences_then_words() -> None:
    words = " ".join(f"word{i}" for i in range(150))  # ~1000 chars, no sentence end
    result = meeting([seg(0.0, 60.0, "S2", f"Short one. {words}")])
    passages = cut_passages(result, max_chars=300)
    assert len(passages) >= 4
    assert all(p.segment_indices == [0] and len(p.text) <= 300 for p in passages)
    assert passages[0].text.startswith("Short one.")
    assert passages[-1].end == 60.0
    assert " ".join(p.text for p in passages).split() == f"Short one. {words}".split()


def test_passages_show_the_corrected_speaker_and_words() -> None:
    result = meeting([seg(0.0, 2.0, "S2", "The budget is fine."), seg(2.0, 3.0, "S1", "Ok.")])
    rename = {"speaker": "S2", "name": "Bob"}
    fix = {"segment": 0, "text": "The pilot budget is fine."}
    fixes = [
        Correction(id="1", job_id="job-1", kind=RENAME_SPEAKER, payload=rename),
        Correction(id="2", job_id="job-1", kind=FIX_TEXT, payload=fix),
    ]
    passages = cut_passages(apply_corrections(result, fixes, DEFAULT_GRAPH))
    assert passages[0].speaker_name == "Bob"
    assert passages[0].text == "The pilot budget is fine."


def test_an_empty_result_has_no_passages() -> None:
    assert cut_passages(meeting([])) == []
