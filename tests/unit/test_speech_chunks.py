"""The chunked Whisper decoder's bookkeeping: chunks from speech spans, chunk time -> the
recording's time, the language found once, where a chunk's decoding goes on. The batching
loop is driven by a named fake decoder (no model)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from stages.engines import whisper, whisper_chunked
from stages.engines.speech_chunks import (
    Chunk,
    build_chunks,
    resume_frame,
    vote_language,
)

SR = 16000


# ------------------------------------------------------------------ chunk building


def test_spans_are_packed_in_order_without_passing_the_window() -> None:
    spans = [(0, 10), (20, 35), (40, 50), (60, 61)]
    chunks = build_chunks(spans, max_samples=30)
    assert [c.spans for c in chunks] == [((0, 10), (20, 35)), ((40, 50), (60, 61))]
    assert all(c.samples <= 30 for c in chunks)
    # Nothing is lost, nothing repeated.
    assert [s for c in chunks for s in c.spans] == spans


def test_a_span_that_fills_the_window_exactly_stays_whole() -> None:
    chunks = build_chunks([(0, 30), (30, 31)], max_samples=30)
    assert [c.spans for c in chunks] == [((0, 30),), ((30, 31),)]


def test_a_span_longer_than_the_window_is_cut_and_the_open_chunk_closed() -> None:
    chunks = build_chunks([(0, 5), (10, 80), (90, 95)], max_samples=30)
    assert [c.spans for c in chunks] == [
        ((0, 5),),
        ((10, 40),),
        ((40, 70),),
        ((70, 80), (90, 95)),
    ]


def test_no_speech_no_chunks_and_empty_spans_dropped() -> None:
    assert build_chunks([], max_samples=30) == []
    assert build_chunks([(5, 5)], max_samples=30) == []
    with pytest.raises(ValueError):
        build_chunks([(0, 1)], max_samples=0)


def test_a_recording_within_one_window_is_one_chunk_of_all_its_speech() -> None:
    # What the sequential decoder feeds its first window: the speech, concatenated.
    spans = [(3328, 76032), (90000, 120000)]
    (chunk,) = build_chunks(spans, max_samples=30 * SR)
    audio = np.arange(130000, dtype=np.float32)
    expected = np.concatenate([audio[3328:76032], audio[90000:120000]])
    np.testing.assert_array_equal(chunk.audio(audio), expected)


# ------------------------------------------------------------------ chunk time -> recording


def test_chunk_times_map_back_across_the_cut_out_silence() -> None:
    chunk = Chunk(((SR, 3 * SR), (10 * SR, 12 * SR)))  # 1-3 s, then 10-12 s
    assert chunk.samples == 4 * SR
    assert chunk.to_recording(0.0, SR) == 1.0
    assert chunk.to_recording(1.5, SR) == 2.5
    assert chunk.to_recording(2.5, SR) == 10.5
    assert chunk.span_at(1.99, SR) == 0 and chunk.span_at(2.0, SR) == 1
    # Past the end: the last span's end, never beyond the speech.
    assert chunk.to_recording(9.0, SR) == 12.0
    # A word's end mapped through the span of its middle stays in that span.
    assert chunk.to_recording(2.2, SR, span=0) == 3.0


# ------------------------------------------------------------------ language once


def test_language_is_the_length_weighted_vote_of_the_chunks() -> None:
    detections = [
        ([("en", 0.6), ("de", 0.4)], 2.0),  # a short chunk leaning English
        ([("de", 0.9), ("en", 0.1)], 28.0),  # a full window of German
    ]
    lang, prob = vote_language(detections)
    assert lang == "de"
    assert prob == pytest.approx((2.0 * 0.4 + 28.0 * 0.9) / 30.0)


def test_one_chunk_gives_its_own_detection() -> None:
    lang, prob = vote_language([([("it", 0.95), ("es", 0.02)], 4.5)])
    assert lang == "it" and prob == pytest.approx(0.95)


def test_vote_needs_some_speech() -> None:
    with pytest.raises(ValueError):
        vote_language([([("en", 1.0)], 0.0)])


# ------------------------------------------------------------------ a chunk's rest


def test_the_rest_of_a_chunk_starts_where_decoding_stopped() -> None:
    chunk = Chunk(((SR, 3 * SR), (10 * SR, 12 * SR)))
    rest = chunk.tail(1.5, SR)
    assert rest is not None and rest.spans == ((int(2.5 * SR), 3 * SR), (10 * SR, 12 * SR))
    rest = chunk.tail(2.5, SR)
    assert rest is not None and rest.spans == ((int(10.5 * SR), 12 * SR),)
    assert chunk.tail(4.0, SR) is None
    assert chunk.tail(0.0, SR) == chunk


def test_decoding_goes_on_after_the_last_word_unless_the_text_ended_there() -> None:
    fps = 100
    # Stopped on a pair of timestamps at 8.50 s of an 11.44 s chunk: go on after the last
    # word (8.62 s), as the sequential decoder's next window would.
    assert resume_frame(850, 1144, False, 8.62, fps) == 862
    # A single timestamp at the end: all heard.
    assert resume_frame(1144, 1144, True, 8.62, fps) is None
    # No words timed: the splitter's own seek.
    assert resume_frame(850, 1144, False, None, fps) == 850
    # Never again from the start (no progress), never past the end.
    assert resume_frame(0, 1144, False, 0.0, fps) is None
    assert resume_frame(850, 1144, False, 11.44, fps) is None


# ------------------------------------------------------------------ the engine's batching


class FakeChunkDecoder:
    """Named fake of whisper_chunked._ChunkDecoder: records what the engine asks of it."""

    calls: list[tuple[str, Any]] = []

    def __init__(self, model: Any, beam_size: int) -> None:
        self.beam_size = beam_size

    def encode(self, audio: np.ndarray, batch: list[Chunk]) -> tuple[Any, list[int]]:
        FakeChunkDecoder.calls.append(("encode", [c.spans for c in batch]))
        return batch, [c.samples // 160 for c in batch]

    def language(self, encoded: Any, batch: list[Chunk]) -> tuple[str, float]:
        FakeChunkDecoder.calls.append(("language", len(batch)))
        return "it", 0.9

    def decode(
        self, encoded: Any, frames: list[int], batch: list[Chunk], language: str
    ) -> tuple[list[Any], list[Chunk]]:
        FakeChunkDecoder.calls.append(("decode", language))
        # Every first-round chunk stops 15 s in, leaving its last 5 s unheard.
        rests = [c.tail(15.0, SR) for c in batch if c.samples == 20 * SR]
        return [], [r for r in rests if r is not None]


def _engine(batch_size: int) -> whisper.FasterWhisperTranscriber:
    engine = whisper.FasterWhisperTranscriber.__new__(whisper.FasterWhisperTranscriber)
    engine.batch_size = batch_size
    engine._model = None
    return engine


@pytest.fixture
def fake_decoder(monkeypatch: pytest.MonkeyPatch) -> type[FakeChunkDecoder]:
    FakeChunkDecoder.calls = []
    monkeypatch.setattr(whisper_chunked, "_ChunkDecoder", FakeChunkDecoder)
    # Five 20 s stretches of speech: five chunks (two do not fit one 30 s window).
    spans = [(n * 25 * SR, (n * 25 + 20) * SR) for n in range(5)]
    monkeypatch.setattr(whisper_chunked, "speech_spans", lambda audio: spans)
    return FakeChunkDecoder


def span(start_s: int, end_s: int) -> tuple[int, int]:
    return (start_s * SR, end_s * SR)


def test_language_is_found_once_and_given_to_every_batch(
    fake_decoder: type[FakeChunkDecoder],
) -> None:
    progress: list[float] = []
    out = _engine(batch_size=2).transcribe(
        np.zeros(130 * SR, dtype=np.float32),
        language=None,
        progress=lambda stage, done, total: progress.append(done),
    )
    assert fake_decoder.calls == [
        ("encode", [(span(0, 20),), (span(25, 45),)]),
        ("language", 2),
        ("decode", "it"),
        ("encode", [(span(50, 70),), (span(75, 95),)]),
        ("decode", "it"),
        ("encode", [(span(100, 120),)]),
        ("decode", "it"),
        # What the five chunks left unheard, packed into one 25 s chunk: one encoding.
        ("encode", [(span(15, 20), span(40, 45), span(65, 70), span(90, 95), span(115, 120))]),
        ("decode", "it"),
    ]
    assert (out.language, out.language_probability) == ("it", 0.9)
    assert progress == sorted(progress) and progress[-1] == 1.0


def test_a_given_language_is_not_detected(fake_decoder: type[FakeChunkDecoder]) -> None:
    out = _engine(batch_size=8).transcribe(
        np.zeros(130 * SR, dtype=np.float32), language="fr", progress=lambda *a: None
    )
    assert [c[0] for c in fake_decoder.calls] == ["encode", "decode", "encode", "decode"]
    assert all(c[1] == "fr" for c in fake_decoder.calls if c[0] == "decode")
    assert (out.language, out.language_probability) == ("fr", 1.0)


def test_no_speech_is_an_empty_transcript(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(whisper_chunked, "speech_spans", lambda audio: [])
    out = _engine(batch_size=8).transcribe(
        np.zeros(SR, dtype=np.float32), language=None, progress=lambda *a: None
    )
    assert out.segments == [] and out.language == "und" and out.duration_s == 1.0
