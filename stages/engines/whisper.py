"""faster-whisper (CTranslate2) as a Transcriber: the sequential decoder, or the chunked one
(the speech cut into windows decoded several at a time, the language found once)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from core.artifacts import Transcript, TranscriptSegment, Word
from core.errors import ModelUnavailable
from core.events import ProgressCallback
from stages.engines.base import SAMPLE_RATE, weights_fingerprint

# Files faster-whisper needs offline; without tokenizer.json it reaches for the hub.
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")


def whisper_model_id(model_dir: Path, fingerprint_cache: Path | None = None) -> str:
    """`faster-whisper:<dir name>@<sha256[:12] of model.bin>`, without loading the model."""
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise ModelUnavailable(
            f"Whisper model directory {model_dir} lacks {', '.join(missing)}; "
            "point SCRIBE_MODELS__ASR_DIR at a CTranslate2 Whisper directory"
        )
    digest = weights_fingerprint(model_dir / "model.bin", fingerprint_cache)
    return f"faster-whisper:{model_dir.name}@{digest}"


class FasterWhisperTranscriber:
    """Loads the model once; `transcribe` is deterministic (temperature 0, no fallback)."""

    def __init__(
        self,
        model_dir: Path,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 0,
        *,
        batch_size: int = 0,
        fingerprint_cache: Path | None = None,
    ) -> None:
        """batch_size > 0: the chunked decoder, which cuts the speech found by the VAD
        into <= 30 s chunks and decodes `batch_size` of them at once, in the language
        found once for the recording; 0: faster-whisper's sequential 30 s windows, each
        conditioned on the previous text (docs/models.md, "Chunked decoding")."""
        self.model_id = whisper_model_id(model_dir, fingerprint_cache)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never let a missing file hit the hub
        from faster_whisper import WhisperModel

        from stages.engines.mel import PiecewiseFeatureExtractor

        self.model_dir = model_dir
        self._model = WhisperModel(
            str(model_dir), device=device, compute_type=compute_type, cpu_threads=cpu_threads
        )
        # The same features, without the whole recording's STFT in memory at once.
        self._model.feature_extractor = PiecewiseFeatureExtractor.like(
            self._model.feature_extractor
        )
        self.batch_size = batch_size

    def transcribe(
        self,
        audio: np.ndarray,
        *,
        language: str | None = None,
        beam_size: int = 5,
        vad_filter: bool = True,
        progress: ProgressCallback,
    ) -> Transcript:
        progress("transcribe", 0.0, 1.0)
        if self.batch_size > 0 and vad_filter:  # the chunks are the VAD's speech
            out = self._chunked(audio, language, beam_size, progress)
        else:
            out = self._sequential(audio, language, beam_size, vad_filter, progress)
        progress("transcribe", 1.0, 1.0)
        return out

    def _sequential(
        self,
        audio: np.ndarray,
        language: str | None,
        beam_size: int,
        vad_filter: bool,
        progress: ProgressCallback,
    ) -> Transcript:
        duration = len(audio) / SAMPLE_RATE
        segments_iter, info = self._model.transcribe(
            audio,
            language=language,
            beam_size=beam_size,
            word_timestamps=True,
            # A single temperature: no sampling fallback, so reruns give the same words.
            temperature=0.0,
            vad_filter=vad_filter,
        )
        segments: list[TranscriptSegment] = []
        for seg in segments_iter:  # a generator: the decoding happens in this loop
            segments.append(_segment(seg))
            if duration > 0:
                progress("transcribe", min(seg.end / duration, 1.0), 1.0)
        return Transcript(
            language=info.language,
            language_probability=float(info.language_probability),
            duration_s=duration,
            segments=segments,
        )

    def _chunked(
        self,
        audio: np.ndarray,
        language: str | None,
        beam_size: int,
        progress: ProgressCallback,
    ) -> Transcript:
        from stages.engines.whisper_chunked import transcribe_chunked

        return transcribe_chunked(
            self._model,
            audio,
            language=language,
            beam_size=beam_size,
            batch_size=self.batch_size,
            progress=progress,
        )


def _segment(seg: Any) -> TranscriptSegment:
    words = [
        Word(start=float(w.start), end=float(w.end), word=w.word, probability=float(w.probability))
        for w in (seg.words or [])
    ]
    return TranscriptSegment(
        start=float(seg.start),
        end=float(seg.end),
        text=seg.text.strip(),
        words=words,
        avg_logprob=float(seg.avg_logprob),
        no_speech_prob=float(seg.no_speech_prob),
    )
