"""Speaker-count floor and overlap-aware resegmentation of the windowed recipe (pure logic,
hand-made segmentation chunks with a known answer)."""

from __future__ import annotations

import numpy as np
import pytest

from stages.engines.clustering import SpectralOptions, cluster
from stages.engines.resegment import (
    local_speaker_floor,
    name_local_speakers,
    one_at_a_time,
    resegment,
    runs_to_turns,
    top_speakers,
)

FRAME_S = 0.1  # hand-made chunks: 10 s of 100 frames of 0.1 s


def chunk(*active: tuple[int, int, int]) -> np.ndarray:
    """One 10 s chunk, (100 frames, 3 local speakers); (local, first, last frame) each."""
    out = np.zeros((100, 3))
    for j, a, b in active:
        out[a:b, j] = 1.0
    return out


def test_the_floor_is_the_most_voices_one_chunk_keeps_apart() -> None:
    chunks = np.stack([chunk((0, 0, 100)), chunk((0, 0, 40), (1, 40, 70), (2, 95, 99))])
    # chunk 2 holds three local speakers, but the third speaks 0.4 s only
    assert local_speaker_floor(chunks, FRAME_S, min_s=0.5) == 2
    assert local_speaker_floor(chunks, FRAME_S, min_s=0.3) == 3
    assert local_speaker_floor(chunks, FRAME_S, min_s=0.0) == 0  # off
    assert local_speaker_floor(np.zeros((0, 100, 3)), FRAME_S, min_s=0.5) == 0


def test_short_input_reaches_the_floor_through_ahc() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=192)
    # two voices close enough that AHC at cosine 0.4 keeps them as one
    a = base + 0.8 * rng.normal(size=192)
    b = base + 0.8 * rng.normal(size=192)
    x = np.concatenate([a + 0.3 * rng.normal(size=(30, 192)), b + 0.3 * rng.normal(size=(30, 192))])
    o = SpectralOptions(ahc_threshold=0.2)
    assert len(set(cluster(x, options=o).tolist())) == 1
    two = cluster(x, min_speakers=2, options=o)
    assert len(set(two.tolist())) == 2
    assert len(set(two[:30].tolist())) == len(set(two[30:].tolist())) == 1


def test_the_floor_keeps_a_small_cluster_from_being_folded() -> None:
    rng = np.random.default_rng(2)
    c1, c2 = rng.normal(size=192), rng.normal(size=192)
    x = np.concatenate(
        [c1 + 0.2 * rng.normal(size=(40, 192)), c2 + 0.2 * rng.normal(size=(3, 192))]
    )
    assert len(set(cluster(x).tolist())) == 1  # 3 windows: folded into the big one
    assert len(set(cluster(x, min_speakers=2).tolist())) == 2


def test_local_speakers_are_named_by_the_windows_they_speak_in() -> None:
    # windows every 0.5 s over 0-20 s: cluster 0 before 10 s, cluster 1 after
    centres = np.arange(0.25, 20, 0.5)
    labels = (centres > 10).astype(np.int64)
    times = (np.arange(100) + 0.5) * FRAME_S
    # chunk 0 (0-10 s): local 2 speaks; chunk 1 (5-15 s): local 0 speaks 5-8 s, local 1
    # 10-15 s, and they overlap nowhere
    chunks = np.stack([chunk((2, 0, 100)), chunk((0, 0, 30), (1, 50, 100))])
    hard = name_local_speakers(chunks, 5.0, times, centres, labels)
    assert hard.tolist() == [[-1, -1, 0], [0, 1, -1]]


def test_two_local_speakers_of_one_chunk_get_two_clusters() -> None:
    # every window says cluster 0, but the chunk holds two voices: the weaker one takes
    # the other cluster instead of sharing cluster 0
    centres = np.arange(0.25, 10, 0.5)
    labels = np.zeros(len(centres), dtype=np.int64)
    labels[-1] = 1
    times = (np.arange(100) + 0.5) * FRAME_S
    hard = name_local_speakers(chunk((0, 0, 60), (1, 60, 100))[None], 5.0, times, centres, labels)
    assert sorted(hard[0, :2].tolist()) == [0, 1]


def test_each_frame_keeps_as_many_clusters_as_voices() -> None:
    scores = np.array([[2.0, 1.0, 0.0], [2.0, 1.0, 0.0], [0.0, 1.0, 3.0], [0.0, 0.0, 0.0]])
    on = top_speakers(scores, np.array([1, 2, 3, 1]))
    # frame 3 counts a voice but no cluster scores there: nobody is invented
    assert on.tolist() == [
        [True, False, False],
        [True, True, False],
        [False, True, True],
        [False, False, False],
    ]


def test_runs_become_turns_and_short_gaps_close() -> None:
    on = np.zeros((20, 2), dtype=bool)
    on[0:5, 0] = on[7:10, 0] = on[15:20, 0] = True
    on[4:8, 1] = True
    turns = runs_to_turns(on, 0.0, 0.1, fill_gap_s=0.25)
    assert turns == [(0.0, 1.0, 0), (0.4, 0.8, 1), (1.5, 2.0, 0)]


def test_resegment_gives_overlap_in_turns_and_one_voice_in_exclusive_turns() -> None:
    pytest.importorskip("pyannote.audio")
    from pyannote.core import SlidingWindow, SlidingWindowFeature

    # 20 s: A speaks 0-12 s, B 8-20 s (overlap 8-12 s); chunks of 10 s every 5 s
    frames = SlidingWindow(start=0.0, duration=FRAME_S, step=FRAME_S)
    data = np.stack(
        [
            chunk((0, 0, 100), (1, 80, 100)),  # 0-10 s
            chunk((0, 0, 70), (1, 30, 100)),  # 5-15 s
            chunk((1, 0, 100), (0, 0, 20)),  # 10-20 s
        ]
    )
    chunks = SlidingWindowFeature(data, SlidingWindow(start=0.0, duration=10.0, step=5.0))
    centres = np.arange(0.75, 20, 0.75)
    labels = (centres > 10).astype(np.int64)
    turns, exclusive = resegment(chunks, frames, [(0, 20 * 16000)], centres, labels, 0.2)
    assert [(round(s), round(e), k) for s, e, k in turns] == [(0, 12, 0), (8, 20, 1)]
    assert [k for *_, k in exclusive] == [0, 1]
    assert exclusive[0][1] == pytest.approx(exclusive[1][0])  # one voice at a time
    assert exclusive[0][0] == 0.0 and exclusive[1][1] == pytest.approx(20.0)


def test_a_floor_splits_even_a_handful_of_windows() -> None:
    rng = np.random.default_rng(3)
    c1, c2 = rng.normal(size=192), rng.normal(size=192)
    x = np.concatenate([c1 + 0.2 * rng.normal(size=(4, 192)), c2 + 0.2 * rng.normal(size=(4, 192))])
    assert set(cluster(x).tolist()) == {0}  # 8 windows: one speaker, nothing to go on
    two = cluster(x, min_speakers=2)
    assert two.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_exclusive_turns_join_across_silence_only() -> None:
    runs = [(0.0, 1.0, 0), (1.1, 1.2, 1), (1.3, 2.0, 0), (2.1, 3.0, 0)]
    # 0's runs around 1's 0.1 s stay apart; the 0.1 s of silence after 2.0 s closes
    assert one_at_a_time(runs, 0.2) == [(0.0, 1.0, 0), (1.1, 1.2, 1), (1.3, 3.0, 0)]
