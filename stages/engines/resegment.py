"""Overlap-aware turns for the windowed recipe: segmentation-3.0's local speakers, named by
the window clusters.

segmentation-3.0 hears up to three local speakers in each 10 s chunk, overlaps included,
at a 17 ms resolution; it does not know who they are from one chunk to the next. The
window clusters know who is who, at the windows' coarse resolution and one voice at a
time. Each chunk's local speaker takes the cluster most of its solo frames fall in (one
cluster per local speaker of a chunk, by linear assignment), the chunks are overlap-added
per cluster, and every frame keeps as many clusters as segmentation-3.0 counts voices there
(at least one where the VAD heard speech). pyannote's pipeline does the same last step
with CAM++ run once per local speaker and chunk; here no embedding is computed twice.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stages.engines.base import SAMPLE_RATE

# A frame is named after the nearest window centre only if it lies this close to it.
NEAR_S = 1.0


def local_speaker_floor(chunk_scores: np.ndarray, frame_s: float, min_s: float) -> int:
    """The most local speakers one chunk holds, each active for at least min_s: a lower
    bound on the number of speakers (two voices segmentation-3.0 keeps apart in one 10 s
    chunk are two people). chunk_scores: (chunks, frames, local speakers)."""
    if chunk_scores.size == 0 or min_s <= 0:
        return 0
    active_s = (chunk_scores > 0.5).sum(axis=1) * frame_s  # (chunks, local speakers)
    return int((active_s >= min_s).sum(axis=1).max())


def name_local_speakers(
    chunk_scores: np.ndarray,
    chunk_step_s: float,
    frame_times: np.ndarray,
    centres_s: np.ndarray,
    labels: np.ndarray,
) -> np.ndarray:
    """(chunks, local speakers) -> cluster of each local speaker, -1 where it is silent.

    chunk_scores: (chunks, frames, local) activations in [0, 1]; frame_times: the centre of
    each chunk frame from the chunk's start (s); centres_s / labels: the windows' centres
    and clusters."""
    from scipy.optimize import linear_sum_assignment

    n_chunks, _, n_local = chunk_scores.shape
    hard = np.full((n_chunks, n_local), -1, dtype=np.int64)
    if len(centres_s) == 0:
        return hard
    order = np.argsort(centres_s, kind="stable")
    centres, labs = centres_s[order], labels[order]
    k = int(labs.max()) + 1
    for c in range(n_chunks):
        t = c * chunk_step_s + frame_times
        idx = np.clip(np.searchsorted(centres, t), 1, max(len(centres) - 1, 1))
        left = centres[idx - 1]
        right = centres[np.minimum(idx, len(centres) - 1)]
        nearest = np.where(np.abs(t - left) <= np.abs(right - t), idx - 1, idx)
        nearest = np.minimum(nearest, len(centres) - 1)
        near = np.abs(centres[nearest] - t) < NEAR_S
        frame_label = labs[nearest]
        active = chunk_scores[c] > 0.5
        solo = active & (active.sum(axis=1, keepdims=True) == 1)
        votes = np.zeros((n_local, k))
        for j in range(n_local):
            mask = (solo[:, j] if solo[:, j].any() else active[:, j]) & near
            if mask.any():
                votes[j] = np.bincount(frame_label[mask], minlength=k)
        live = np.flatnonzero(votes.sum(axis=1) > 0)
        if len(live) == 0:
            continue
        rows, cols = linear_sum_assignment(-votes[live])
        hard[c, live[rows]] = cols
        for extra in live:  # more local speakers than clusters: the best one, shared
            if hard[c, extra] < 0:
                hard[c, extra] = int(np.argmax(votes[extra]))
    return hard


def top_speakers(scores: np.ndarray, count: np.ndarray) -> np.ndarray:
    """(frames, K) scores and (frames,) voice counts -> (frames, K) bool: in each frame the
    `count` best-scoring clusters (only those with a score above 0)."""
    on = np.zeros(scores.shape, dtype=bool)
    ranked = np.argsort(-scores, axis=1, kind="stable")
    rows = np.arange(len(scores))
    for rank in range(min(scores.shape[1], int(count.max(initial=0)))):
        pick = ranked[:, rank]
        keep = (count > rank) & (scores[rows, pick] > 0)
        on[rows[keep], pick[keep]] = True
    return on


def runs_to_turns(
    on: np.ndarray, frame_start_s: float, frame_step_s: float, fill_gap_s: float
) -> list[tuple[float, float, int]]:
    """(frames, K) activity -> [(start_s, end_s, cluster)] sorted by start; a cluster's runs
    closer than fill_gap_s join."""
    out: list[tuple[float, float, int]] = []
    for k in range(on.shape[1]):
        col = np.concatenate([[False], on[:, k], [False]])
        edges = np.flatnonzero(np.diff(col.astype(np.int8)))
        merged: list[list[float]] = []
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            s, e = frame_start_s + a * frame_step_s, frame_start_s + b * frame_step_s
            if merged and s - merged[-1][1] <= fill_gap_s + 1e-9:
                merged[-1][1] = e
            else:
                merged.append([s, e])
        out += [(round(s, 3), round(e, 3), k) for s, e in merged]
    return sorted(out)


def resegment(
    chunks: Any,
    frames: Any,
    speech: list[tuple[int, int]],
    centres_s: np.ndarray,
    labels: np.ndarray,
    fill_gap_s: float,
) -> tuple[list[tuple[float, float, int]], list[tuple[float, float, int]]]:
    """(turns with overlaps, exclusive turns), each [(start_s, end_s, cluster)].

    chunks: segmentation-3.0's SlidingWindowFeature (chunks, frames, local speakers);
    frames: the model's frame SlidingWindow; speech: the VAD's regions in samples."""
    from pyannote.audio import Inference
    from pyannote.core import SlidingWindowFeature

    data = np.asarray(chunks.data, dtype=np.float64)
    n_chunks, n_frames, n_local = data.shape
    if len(labels) == 0 or n_chunks == 0:
        return [], []
    frame_times = frames.start + frames.duration / 2 + np.arange(n_frames) * frames.step
    hard = name_local_speakers(data, chunks.sliding_window.step, frame_times, centres_s, labels)
    k = int(labels.max()) + 1
    per_cluster = np.zeros((n_chunks, n_frames, k))
    for c, j in zip(*np.nonzero(hard >= 0), strict=True):
        col = per_cluster[c, :, hard[c, j]]
        np.maximum(col, data[c, :, j], out=col)
    scores = Inference.aggregate(
        SlidingWindowFeature(per_cluster, chunks.sliding_window),
        frames,
        hamming=False,
        missing=0.0,
        skip_average=True,
    )
    voices = Inference.aggregate(
        SlidingWindowFeature(data.sum(axis=-1, keepdims=True), chunks.sliding_window),
        frames,
        hamming=False,
        missing=0.0,
    )
    n = min(len(scores.data), len(voices.data))
    grid = scores.sliding_window
    start_s, step_s = grid[0].middle - grid.step / 2, grid.step
    count = np.rint(voices.data[:n, 0]).astype(np.int64)
    times = start_s + (np.arange(n) + 0.5) * step_s
    heard = np.zeros(n, dtype=bool)
    for a, b in speech:  # the VAD heard someone: at least one voice
        heard |= (times >= a / SAMPLE_RATE) & (times < b / SAMPLE_RATE)
    count = np.maximum(count, heard.astype(np.int64))
    s = np.asarray(scores.data[:n])
    on = top_speakers(s, count)
    solo = np.zeros_like(on)
    any_on = on.any(axis=1)
    best = np.argmax(np.where(on, s, -np.inf), axis=1)
    solo[np.flatnonzero(any_on), best[any_on]] = True
    return runs_to_turns(on, start_s, step_s, fill_gap_s), one_at_a_time(
        runs_to_turns(solo, start_s, step_s, 0.0), fill_gap_s
    )


def one_at_a_time(
    runs: list[tuple[float, float, int]], fill_gap_s: float
) -> list[tuple[float, float, int]]:
    """Non-overlapping runs -> turns: a cluster's consecutive runs closer than fill_gap_s
    join, only where nobody else speaks between them (so turns never overlap)."""
    out: list[tuple[float, float, int]] = []
    for s, e, k in sorted(runs):
        if out and out[-1][2] == k and s - out[-1][1] <= fill_gap_s + 1e-9:
            out[-1] = (out[-1][0], e, k)
        else:
            out.append((s, e, k))
    return out
