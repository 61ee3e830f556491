"""Spectral / AHC clustering of speaker embeddings and windows -> turns (pure logic)."""

from __future__ import annotations

import numpy as np
import pytest

from stages.engines.clustering import SpectralOptions, cluster
from stages.engines.windowed import Window, WindowedOptions, window_turns, windows_in


def voices(counts: list[int], dim: int = 192, spread: float = 0.35, seed: int = 0) -> np.ndarray:
    """Embeddings around one random direction per speaker, in speaker order."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(counts), dim))
    parts = [
        c + spread * rng.normal(size=(n, dim)) * np.linalg.norm(c) / np.sqrt(dim)
        for c, n in zip(centres, counts, strict=True)
    ]
    return np.concatenate(parts).astype(np.float32)


def truth(counts: list[int]) -> np.ndarray:
    return np.repeat(np.arange(len(counts)), counts)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("counts", [[200, 150, 120], [300, 60, 250, 90, 100]])
def test_spectral_finds_the_speakers(counts: list[int]) -> None:
    labels = cluster(voices(counts))
    assert same_partition(labels, truth(counts))
    assert labels[0] == 0  # numbered in order of first appearance


def test_short_input_goes_through_ahc_and_one_voice_stays_one() -> None:
    counts = [30, 25]
    assert same_partition(cluster(voices(counts)), truth(counts))
    assert set(cluster(voices([60])).tolist()) == {0}


def test_speaker_count_hints_are_obeyed() -> None:
    x = voices([200, 200, 200])
    assert len(set(cluster(x, num_speakers=2).tolist())) == 2
    assert len(set(cluster(x, max_speakers=2).tolist())) <= 2


def test_long_input_clusters_a_subset_and_assigns_the_rest() -> None:
    counts = [900, 700, 400]
    labels = cluster(voices(counts), options=SpectralOptions(max_points=500))
    assert same_partition(labels, truth(counts))


def test_tiny_clusters_fold_into_a_big_one() -> None:
    x = voices([200, 200, 2], seed=3)
    assert len(set(cluster(x).tolist())) == 2


def test_windows_cover_a_region_and_a_short_region_gets_a_full_window() -> None:
    o = WindowedOptions()
    long = windows_in((16000, 16000 * 5), 16000 * 10, o)
    assert long[0].start == 16000 and long[-1].end == 16000 * 5
    assert all(w.end - w.start == 24000 for w in long)
    short = windows_in((16000, 16000 + 8000), 16000 * 10, o)
    assert len(short) == 1 and short[0].end - short[0].start == 24000
    assert (short[0].span_start, short[0].span_end) == (16000, 24000)  # speech kept as it was


def test_turns_split_between_window_centres_and_join_short_pauses() -> None:
    win = [Window(s, s + 24000, s, s + 24000) for s in (0, 12000, 24000, 36000)]
    turns = window_turns(win, np.array([0, 0, 1, 1]), fill_gap_s=0.5)
    assert [t[2] for t in turns] == [0, 1]
    # the boundary lies halfway between the last A centre (1.5 s) and the first B centre (2.25 s)
    assert turns[0][1] == pytest.approx(1.875, abs=0.011)
    assert turns[1][1] == pytest.approx(3.75, abs=0.011)
    # same speaker on both sides of a 0.3 s pause: one turn; of a 2 s pause: two
    a = Window(0, 24000, 0, 24000)
    near = Window(28800, 52800, 28800, 52800)
    far = Window(56000, 80000, 56000, 80000)
    assert len(window_turns([a, near], np.array([0, 0]), fill_gap_s=0.5)) == 1
    assert len(window_turns([a, far], np.array([0, 0]), fill_gap_s=0.5)) == 2


def test_auto_diarizer_sends_short_audio_to_one_engine_and_long_to_the_other() -> None:
    from typing import Any

    from stages.engines.auto import AutoDiarizer
    from stages.engines.fake import FakeDiarizer

    short, long = FakeDiarizer(), FakeDiarizer()
    long_engine: Any = long
    auto = AutoDiarizer(short, long_engine, above_s=120.0)
    assert auto.model_id == "auto:<120s:fake-diarizer@1|fake-diarizer@1"
    for seconds in (30, 119.9, 120, 600):
        auto.diarize(
            np.zeros(int(seconds * 16000), dtype=np.float32),
            num_speakers=None,
            min_speakers=None,
            max_speakers=None,
            progress=lambda *a: None,
        )
    assert (short.calls, long.calls) == (2, 2)
