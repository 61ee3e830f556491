"""Named fakes with the engines' interfaces, for unit tests only (never shipped as defaults)."""

from __future__ import annotations

import numpy as np

from core.artifacts import Diarization, Transcript, TranscriptSegment, Word
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
    model_id = "fake-diarizer@1"
    embedding_model_id = "fake-encoder@1"

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
