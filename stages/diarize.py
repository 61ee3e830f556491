"""`diarize`: decoded audio -> who spoke when (+ one embedding per speaker)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.artifacts import Diarization
from core.errors import BadInput
from core.events import ProgressCallback
from stages.engines.base import SAMPLE_RATE, Diarizer, SpeakerEncoder
from stages.voice import with_clean_embeddings

# Below this the segmentation model has nothing to work with; answer "nobody spoke".
MIN_AUDIO_S = 0.5


class DiarizeParams(BaseModel):
    """Speaker-count hints; all optional. Part of the artifact key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_speakers: int | None = Field(default=None, ge=1, le=64)
    min_speakers: int | None = Field(default=None, ge=1, le=64)
    max_speakers: int | None = Field(default=None, ge=1, le=64)

    # BadInput (not ValueError) passes through pydantic unwrapped: callers get a 4xx error.
    @model_validator(mode="after")
    def _consistent(self) -> DiarizeParams:
        lo, hi, n = self.min_speakers, self.max_speakers, self.num_speakers
        if lo is not None and hi is not None and lo > hi:
            raise BadInput(f"min_speakers ({lo}) is larger than max_speakers ({hi})")
        if n is not None and ((lo is not None and n < lo) or (hi is not None and n > hi)):
            raise BadInput(f"num_speakers ({n}) is outside min_speakers..max_speakers ({lo}..{hi})")
        return self

    @classmethod
    def parse(cls, **values: object) -> DiarizeParams:
        """Validate user input; out-of-range counts raise BadInput too, not ValidationError."""
        try:
            return cls.model_validate(values)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()
            )
            raise BadInput(f"invalid speaker counts: {problems}") from None


# In the artifact's params: how each speaker's embedding is made (stages/voice.py).
SPEAKER_EMBEDDING = "clean-speech-v1"


def run(
    audio: np.ndarray,
    params: DiarizeParams,
    engine: Diarizer,
    progress: ProgressCallback,
    encoder: SpeakerEncoder | None = None,
) -> Diarization:
    """Who spoke when; with `encoder` (the diarizer's embedding model), each speaker's
    embedding is made again from their clean speech only (stages/voice.py)."""
    if len(audio) < MIN_AUDIO_S * SAMPLE_RATE:
        progress("discrete_diarization", 1.0, 1.0)
        return Diarization(
            turns=[], exclusive_turns=[], speakers=[], embedding_model=engine.embedding_model_id
        )
    result = engine.diarize(
        audio,
        num_speakers=params.num_speakers,
        min_speakers=params.min_speakers,
        max_speakers=params.max_speakers,
        progress=progress,
    )
    return with_clean_embeddings(audio, result, encoder) if encoder is not None else result
