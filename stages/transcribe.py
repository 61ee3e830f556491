"""`transcribe`: decoded audio -> words with timestamps, through any Transcriber."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.artifacts import Transcript
from core.events import ProgressCallback
from stages.engines.base import Transcriber


class TranscribeParams(BaseModel):
    """Options that change the transcript, hence part of the artifact key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    language: str | None = None  # ISO code; None: detect
    beam_size: int = Field(default=5, ge=1, le=20)
    vad_filter: bool = True

    @field_validator("language")
    @classmethod
    def _normalise_language(cls, v: str | None) -> str | None:
        if v is None or not v.strip() or v.strip().lower() == "auto":
            return None
        return v.strip().lower()


def run(
    audio: np.ndarray, params: TranscribeParams, engine: Transcriber, progress: ProgressCallback
) -> Transcript:
    if audio.size == 0:  # nothing to hear: an empty transcript, not a model error
        progress("transcribe", 1.0, 1.0)
        return Transcript(
            language=params.language or "und", language_probability=0.0, duration_s=0.0, segments=[]
        )
    return engine.transcribe(
        audio,
        language=params.language,
        beam_size=params.beam_size,
        vad_filter=params.vad_filter,
        progress=progress,
    )
