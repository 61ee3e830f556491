"""Named fakes with the engines' interfaces.

Two users only: the unit tests (through tests/fakes.py) and `models.engine = "fake"`, which
exists for bench/ceiling.py, the benchmark of the orchestration alone (gateway, queue, five
stage tasks, storage, events) with engines that cost nothing. Nothing else selects them and
they are never a default.
"""

from __future__ import annotations

import numpy as np

from core.artifacts import Diarization, DiarizedSpeaker, Transcript, TranscriptSegment, Turn, Word
from core.events import ProgressCallback
from stages.engines.base import SAMPLE_RATE, l2_normalise


class FakeTranscriber:
    """Returns the segments it was built with; records how it was called."""

    model_id = "fake-transcriber@1"

    def __init__(
        self, segments: list[TranscriptSegment] | None = None, language: str = "en"
    ) -> None:
        self.segments = segments or []
        self.language = language
        self.calls: list[dict[str, object]] = []

    def transcribe(
        self,
        audio: np.ndarray,
        *,
        language: str | None,
        beam_size: int,
        vad_filter: bool,
        progress: ProgressCallback,
    ) -> Transcript:
        self.calls.append({"language": language, "beam_size": beam_size, "vad_filter": vad_filter})
        progress("transcribe", 1.0, 1.0)
        return Transcript(
            language=language or self.language,
            language_probability=1.0,
            duration_s=len(audio) / SAMPLE_RATE,
            segments=self.segments,
        )


class FakeDiarizer:
    model_id: str = "fake-diarizer@1"
    embedding_model_id: str | None = "fake-encoder@1"

    def __init__(self, result: Diarization | None = None) -> None:
        self.result = result or Diarization(turns=[], exclusive_turns=[], speakers=[])
        self.calls = 0

    def diarize(
        self,
        audio: np.ndarray,
        *,
        num_speakers: int | None,
        min_speakers: int | None,
        max_speakers: int | None,
        progress: ProgressCallback,
    ) -> Diarization:
        self.calls += 1
        progress("discrete_diarization", 1.0, 1.0)
        return self.result


class FakeEncoder:
    """Embeds a clip as its (normalised) first few samples, so tests can steer the vector."""

    model_id = "fake-encoder@1"

    def __init__(self, dimension: int = 4) -> None:
        self.dimension = dimension

    def embed(self, audio: np.ndarray) -> np.ndarray:
        return l2_normalise(np.asarray(audio[: self.dimension], dtype=np.float32))


def words(*spec: tuple[str, float, float]) -> list[Word]:
    """words(("Hello", 0.0, 0.4), ...) with whisper's leading spaces."""
    return [Word(word=f" {w}", start=s, end=e, probability=0.9) for w, s, e in spec]


def segment(*spec: tuple[str, float, float]) -> TranscriptSegment:
    ws = words(*spec)
    return TranscriptSegment(
        start=ws[0].start, end=ws[-1].end, text="".join(w.word for w in ws).strip(), words=ws
    )


def bench_transcriber() -> FakeTranscriber:
    """One fixed segment, so merge has words to place."""
    return FakeTranscriber(segments=[segment(("fake", 0.0, 0.5), ("words", 0.5, 1.0))])


def bench_diarizer() -> FakeDiarizer:
    """One speaker talking for the first second, so identify and merge have a turn."""
    turn = Turn(start=0.0, end=1.0, speaker="S1")
    return FakeDiarizer(
        Diarization(
            turns=[turn],
            exclusive_turns=[turn],
            speakers=[DiarizedSpeaker(label="S1", talk_time_s=1.0)],
            embedding_model=FakeDiarizer.embedding_model_id,
        )
    )
