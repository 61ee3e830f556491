"""Score normalisation against a cohort of impostor voiceprints (adaptive s-norm).

A raw cosine means different things for different voices and recordings: a distant
microphone lowers every score of a speaker, a voice close to many others raises them.
Adaptive symmetric normalisation (Matějka et al., "Analysis of score normalization in
multilingual speaker recognition", Interspeech 2017) rescales each score by how the two
embeddings score against the cohort voices closest to them:

    s-norm(e, t) = ((s - mu_e) / sd_e + (s - mu_t) / sd_t) / 2

where mu and sd are the mean and standard deviation of the `top_k` highest cohort scores of
the enrollment print e and of the test embedding t. The cohort is shipped per encoder model
id as a small .npy (one L2-normalised embedding per impostor voice) with a manifest line
in `stages/data/cohorts.tsv` saying what it is built from (`python -m bench.cohort`
rebuilds it). It holds nobody of the identification dev protocol's test recordings.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import numpy as np

COHORT_DIR = Path(__file__).resolve().parent / "data"
MANIFEST = COHORT_DIR / "cohorts.tsv"
TOP_K = 20
MIN_SD = 1e-3  # a degenerate cohort (all one voice) must not blow scores up


def cohort_file(model_id: str) -> Path | None:
    """The cohort shipped for encoder `model_id`, from the manifest; None if there is none."""
    if not MANIFEST.exists():
        return None
    with open(MANIFEST, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["model"] == model_id:
                return COHORT_DIR / row["file"]
    return None


@lru_cache(maxsize=8)
def load_cohort(model_id: str | None) -> np.ndarray | None:
    """(N, dim) float32 cohort embeddings for `model_id`, or None (no cohort: no s-norm)."""
    if model_id is None:
        return None
    path = cohort_file(model_id)
    if path is None or not path.exists():
        return None
    cohort: np.ndarray = np.load(path).astype(np.float32)
    cohort /= np.maximum(np.linalg.norm(cohort, axis=1, keepdims=True), 1e-12)
    cohort.setflags(write=False)
    return cohort


def cohort_stats(embeddings: np.ndarray, cohort: np.ndarray, top_k: int = TOP_K) -> np.ndarray:
    """(N, 2): mean and standard deviation of each row's `top_k` best cohort scores."""
    scores = np.asarray(embeddings, dtype=np.float32) @ cohort.T
    k = max(1, min(top_k, cohort.shape[0]))
    top = -np.sort(-scores, axis=1)[:, :k]
    return np.stack([top.mean(axis=1), np.maximum(top.std(axis=1), MIN_SD)], axis=1)


def snorm(
    sim: np.ndarray,
    tests: np.ndarray,
    prints: np.ndarray,
    cohort: np.ndarray,
    top_k: int = TOP_K,
) -> np.ndarray:
    """Adaptive s-norm of cosine matrix `sim` (tests x prints); rows L2-normalised."""
    t = cohort_stats(tests, cohort, top_k)
    p = cohort_stats(prints, cohort, top_k)
    z_test = (sim - t[:, :1]) / t[:, 1:]
    z_print = (sim - p[:, 0][None, :]) / p[:, 1][None, :]
    out: np.ndarray = 0.5 * (z_test + z_print)
    return out
