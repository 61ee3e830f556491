"""Spectral clustering of speaker embeddings (the 3D-Speaker diarization recipe).

Cosine affinity, each row pruned to its strongest entries, unnormalised Laplacian, number
of speakers from the largest eigengap (or given), k-means on the spectral embedding, then
tiny clusters folded into their nearest big one and near-identical clusters merged. numpy,
scipy and scikit-learn only; written after speakerlab/process/cluster.py (Apache-2.0).

The affinity matrix is N x N, so above `max_points` a random subset (fixed seed) is
clustered and every point then takes its nearest centroid: memory and time stay bounded on
long recordings instead of growing with the square (and the eigensolver's cube) of N.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SpectralOptions:
    pval: float = 0.012  # share of each row's affinities kept (at least min_pnum)
    min_pnum: int = 6
    min_speakers: int = 1
    max_speakers: int = 15
    min_cluster_size: int = 4  # smaller clusters are folded into the nearest larger one
    merge_cosine: float = 0.875  # clusters whose centroids are closer than this merge
    # Below this many embeddings everything is one speaker (nothing to cluster on), unless
    # a minimum count (a caller's, or the windowed recipe's floor) says otherwise.
    min_points: int = 10
    max_points: int = 4000
    # Fewer embeddings than this (short audio) are clustered by average-linkage AHC on
    # cosine distance instead: the eigengap is unreliable on a few dozen points.
    ahc_below: int = 150
    ahc_threshold: float = 0.4  # cosine similarity at which two clusters stop merging


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def _spectral(x: np.ndarray, k: int | None, o: SpectralOptions) -> np.ndarray:
    from scipy.linalg import eigh
    from sklearn.cluster import KMeans

    u = _unit(x.astype(np.float64))
    a = u @ u.T
    n = a.shape[0]
    drop = min(int((1 - o.pval) * n), n - o.min_pnum)
    if drop > 0:  # keep each row's strongest affinities only
        low = np.argpartition(a, drop, axis=1)[:, :drop]
        np.put_along_axis(a, low, 0.0, axis=1)
    a = 0.5 * (a + a.T)
    np.fill_diagonal(a, 0.0)
    laplacian = np.diag(np.abs(a).sum(axis=1)) - a
    hi = min(o.max_speakers + 1, n - 1)
    lambdas, vectors = eigh(laplacian, subset_by_index=[0, hi])
    if k is None:
        lo = max(o.min_speakers, 1)
        gaps = np.diff(lambdas[lo - 1 : hi])  # eigengaps for k = lo .. max_speakers
        k = int(np.argmax(gaps)) + lo if len(gaps) else 1
    k = max(1, min(k, n))
    if k == 1:
        return np.zeros(n, dtype=np.int64)
    km = KMeans(n_clusters=k, random_state=0, n_init=10)
    return np.asarray(km.fit_predict(vectors[:, :k]), dtype=np.int64)


def _ahc(x: np.ndarray, k: int | None, o: SpectralOptions) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(x, method="average", metric="cosine")
    if k is not None:
        labels = fcluster(tree, t=k, criterion="maxclust")
    else:
        labels = fcluster(tree, t=1.0 - o.ahc_threshold, criterion="distance")
        if len(np.unique(labels)) < o.min_speakers <= len(x):  # cut lower to reach it
            labels = fcluster(tree, t=o.min_speakers, criterion="maxclust")
    return np.asarray(labels, dtype=np.int64) - 1


def _centroids(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids = np.unique(labels)
    return ids, _unit(np.stack([x[labels == i].mean(axis=0) for i in ids]))


def _fold_small(x: np.ndarray, labels: np.ndarray, min_size: int, keep: int = 1) -> np.ndarray:
    """Clusters under min_size points join their nearest larger one; the `keep` largest
    stay whatever their size (a speaker count floor)."""
    ids, counts = np.unique(labels, return_counts=True)
    largest = np.argsort(-counts, kind="stable")[: max(keep, 0)]
    big = ids[(counts >= min_size) | np.isin(np.arange(len(ids)), largest)]
    if len(big) == len(ids):
        return labels
    if len(big) == 0:
        return np.zeros_like(labels)
    centres = _unit(np.stack([x[labels == i].mean(axis=0) for i in big]))
    small = ~np.isin(labels, big)
    labels = labels.copy()
    labels[small] = big[np.argmax(x[small] @ centres.T, axis=1)]
    return labels


def _merge_close(x: np.ndarray, labels: np.ndarray, threshold: float, keep: int) -> np.ndarray:
    labels = labels.copy()
    while True:
        ids, centres = _centroids(x, labels)
        if len(ids) <= max(keep, 1):
            return labels
        sim = np.triu(centres @ centres.T, 1)
        i, j = np.unravel_index(int(np.argmax(sim)), sim.shape)
        if sim[i, j] < threshold:
            return labels
        labels[labels == ids[j]] = ids[i]


def cluster(
    embeddings: np.ndarray,
    *,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    options: SpectralOptions | None = None,
) -> np.ndarray:
    """(N, D) embeddings -> (N,) labels 0..K-1, numbered in order of first appearance."""
    o = options or SpectralOptions()
    n = len(embeddings)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    x = _unit(np.asarray(embeddings, dtype=np.float64))
    fixed = num_speakers is not None
    if min_speakers is not None or max_speakers is not None:
        o = SpectralOptions(
            **{
                **o.__dict__,
                "min_speakers": min_speakers or o.min_speakers,
                "max_speakers": max(max_speakers or o.max_speakers, min_speakers or 1),
            }
        )
    if n < o.min_points and not fixed and o.min_speakers <= 1:
        return np.zeros(n, dtype=np.int64)
    if n > o.max_points:
        rng = np.random.default_rng(0)
        subset = np.sort(rng.choice(n, size=o.max_points, replace=False))
        sub_labels = _spectral(x[subset], num_speakers, o)
        ids, centres = _centroids(x[subset], sub_labels)
        labels = ids[np.argmax(x @ centres.T, axis=1)]
    elif n < o.ahc_below:
        labels = _ahc(x, num_speakers, o)
    else:
        labels = _spectral(x, num_speakers, o)
    if not fixed:
        labels = _fold_small(x, labels, o.min_cluster_size, o.min_speakers)
        labels = _merge_close(x, labels, o.merge_cosine, o.min_speakers)
    # renumber in order of first appearance
    order: dict[int, int] = {}
    for v in labels.tolist():
        order.setdefault(v, len(order))
    return np.array([order[v] for v in labels.tolist()], dtype=np.int64)
