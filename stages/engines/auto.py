"""`auto`: one Diarizer that hands each recording to the recipe that measured best for its
length (bench/README.md, "Diarization at the best peer's level")."""

from __future__ import annotations

from typing import Any

import numpy as np

from core.artifacts import Diarization
from core.events import ProgressCallback
from stages.engines.base import SAMPLE_RATE
from stages.engines.windowed import WindowedDiarizer


class AutoDiarizer:
    """One recipe for short recordings, another for long ones.

    Measured on the dev audio (bench/README.md, "Diarization at the best peer's level"):
    short far-field clips, where people talk over each other within seconds, need
    overlap-aware turns (the windowed recipe with segmentation-3.0's local speakers), and
    pauses are not a speaker's; on meetings the plain windowed recipe, with a speaker's
    pauses of up to 2 s kept in the turn, is the more accurate. Both are the windowed
    engine, sharing one CAM++ and one segmentation model (pyannote's pipeline can still be
    given as `short`); the id names both and the switch point.
    """

    def __init__(self, short: Any, long: WindowedDiarizer, above_s: float) -> None:
        self.short, self.long, self.above_s = short, long, above_s
        self.model_id = auto_model_id(short.model_id, long.model_id, above_s)
        self.embedding_model_id = long.embedding_model_id

    def diarize(
        self,
        audio: np.ndarray,
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        progress: ProgressCallback,
    ) -> Diarization:
        engine = self.long if len(audio) >= self.above_s * SAMPLE_RATE else self.short
        result: Diarization = engine.diarize(
            audio,
            num_speakers=num_speakers,
            min_speakers=min_speakers,
            max_speakers=max_speakers,
            progress=progress,
        )
        return result


def auto_model_id(short_id: str, long_id: str, above_s: float) -> str:
    return f"auto:<{above_s:g}s:{short_id}|{long_id}"
