"""`identify`: name diarized speakers by comparing their embeddings with enrolled voiceprints."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel
from scipy.optimize import linear_sum_assignment

from core.artifacts import Diarization, Identification, SpeakerMatch
from core.errors import BadInput
from stages.engines.base import SAMPLE_RATE, SpeakerEncoder, l2_normalise

MIN_ENROLL_S = 1.0


class Voiceprint(BaseModel):
    """One enrolled person. `model` is the encoder id the embedding was made with."""

    id: str
    name: str
    embedding: list[float]
    model: str


def run(
    diarization: Diarization,
    voiceprints: list[Voiceprint],
    *,
    threshold: float,
    embedding_model: str | None,
) -> Identification:
    """One-to-one assignment maximising total cosine similarity; weak matches stay unnamed."""
    # Embeddings from another model live in another space: comparing them would be noise.
    usable = [v for v in voiceprints if embedding_model is not None and v.model == embedding_model]
    clusters = [s for s in diarization.speakers if s.embedding is not None]
    matches = {s.label: SpeakerMatch(label=s.label) for s in diarization.speakers}

    if usable and clusters:
        c = np.stack([l2_normalise(np.asarray(s.embedding)) for s in clusters])
        v = np.stack([l2_normalise(np.asarray(p.embedding)) for p in usable])
        if c.shape[1] != v.shape[1]:
            raise BadInput(
                f"voiceprints have {v.shape[1]} dimensions but speakers have {c.shape[1]}; "
                "re-enroll with the current model"
            )
        sim = c @ v.T  # (clusters, voiceprints) cosine similarities
        rows, cols = linear_sum_assignment(sim, maximize=True)
        assigned = dict(zip(rows.tolist(), cols.tolist(), strict=True))
        for i, speaker in enumerate(clusters):
            j = assigned.get(i)
            if j is not None and sim[i, j] >= threshold:
                matches[speaker.label] = SpeakerMatch(
                    label=speaker.label,
                    speaker_id=usable[j].id,
                    name=usable[j].name,
                    score=round(float(sim[i, j]), 4),
                )
            else:  # unnamed, but the best score helps tune the threshold
                matches[speaker.label] = SpeakerMatch(
                    label=speaker.label, score=round(float(sim[i].max()), 4)
                )

    return Identification(
        threshold=threshold, embedding_model=embedding_model, matches=list(matches.values())
    )


def enroll_embedding(clips: list[np.ndarray], encoder: SpeakerEncoder) -> list[float]:
    """Average of the clips' L2-normalised embeddings, normalised again."""
    if not clips:
        raise BadInput("enrollment needs at least one audio clip")
    for i, clip in enumerate(clips, start=1):
        if len(clip) < MIN_ENROLL_S * SAMPLE_RATE:
            raise BadInput(
                f"enrollment clip {i} lasts {len(clip) / SAMPLE_RATE:.2f} s; "
                f"at least {MIN_ENROLL_S:g} s of speech is needed"
            )
    mean = np.mean([l2_normalise(encoder.embed(clip)) for clip in clips], axis=0)
    return [float(x) for x in l2_normalise(mean)]
