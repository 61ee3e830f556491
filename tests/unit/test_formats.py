"""core.formats: SRT/VTT/TXT rendering of a MeetingResult."""

from __future__ import annotations

import json

import pytest

from core import formats
from core.artifacts import MeetingResult, ResultSegment, ResultSpeaker
from core.errors import BadInput


def result(*segments: tuple[float, float, str, str]) -> MeetingResult:
    return MeetingResult(
        job_id="job-1",
        duration_s=4000.0,
        language="en",
        speakers=[
            ResultSpeaker(
                id="S1", name="Alice", speaker_id="vp-1", confidence=0.9, talk_time_s=3.0
            ),
            ResultSpeaker(id="S2", talk_time_s=2.0),
        ],
        segments=[
            ResultSegment(start=s, end=e, speaker=sp, text=t, words=[]) for s, e, sp, t in segments
        ],
    )


SAMPLE = result((62.5, 64.25, "S1", "Hello there."), (3725.0, 3726.0015, "S2", "Hi <Alice> & co."))


@pytest.mark.parametrize(
    ("seconds", "sep", "expected"),
    [
        (0.0, ",", "00:00:00,000"),
        (1.2344, ",", "00:00:01,234"),
        (1.2346, ",", "00:00:01,235"),
        (59.9996, ".", "00:01:00.000"),
        (3725.5, ".", "01:02:05.500"),
        (-0.2, ",", "00:00:00,000"),
        (360000.0, ",", "100:00:00,000"),
    ],
)
def test_clock(seconds: float, sep: str, expected: str) -> None:
    assert formats._clock(seconds, sep) == expected


def test_txt_one_line_per_segment_with_names() -> None:
    assert formats.to_txt(SAMPLE) == (
        "[00:01:02] Alice: Hello there.\n[01:02:05] Speaker 2: Hi <Alice> & co.\n"
    )


def test_srt() -> None:
    assert formats.to_srt(SAMPLE) == (
        "1\n00:01:02,500 --> 00:01:04,250\nAlice: Hello there.\n"
        "\n"
        "2\n01:02:05,000 --> 01:02:06,002\nSpeaker 2: Hi <Alice> & co.\n"
    )


def test_vtt_has_header_voice_tags_and_escapes() -> None:
    assert formats.to_vtt(SAMPLE) == (
        "WEBVTT\n"
        "\n"
        "00:01:02.500 --> 00:01:04.250\n<v Alice>Hello there.\n"
        "\n"
        "01:02:05.000 --> 01:02:06.002\n<v Speaker 2>Hi &lt;Alice&gt; &amp; co.\n"
    )


def test_zero_length_cue_gets_one_millisecond() -> None:
    srt = formats.to_srt(result((1.0, 1.0, "S1", "Hm.")))
    assert "00:00:01,000 --> 00:00:01,001" in srt


@pytest.mark.parametrize(
    ("label", "expected"), [("S1", "Speaker 1"), ("S12", "Speaker 12"), ("guest", "guest")]
)
def test_default_names(label: str, expected: str) -> None:
    assert formats._default_name(label) == expected


def test_segment_speaker_missing_from_speaker_list() -> None:
    assert formats.to_txt(result((0.0, 1.0, "S7", "Who?"))) == "[00:00:00] Speaker 7: Who?\n"


def test_empty_result() -> None:
    empty = result()
    assert formats.to_txt(empty) == ""
    assert formats.to_srt(empty) == ""
    assert formats.to_vtt(empty) == "WEBVTT\n"


@pytest.mark.parametrize(
    ("fmt", "media_type"),
    [
        ("json", "application/json"),
        ("srt", "application/x-subrip"),
        ("vtt", "text/vtt"),
        ("txt", "text/plain"),
    ],
)
def test_render(fmt: str, media_type: str) -> None:
    text, mt = formats.render(SAMPLE, fmt)
    assert mt == media_type and text
    if fmt == "json":
        assert MeetingResult.model_validate(json.loads(text)) == SAMPLE


def test_render_unknown_format() -> None:
    with pytest.raises(BadInput, match="unknown format"):
        formats.render(SAMPLE, "docx")
