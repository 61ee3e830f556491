"""identify: one-to-one assignment of voiceprints to clusters, with a threshold."""

from __future__ import annotations

import numpy as np
import pytest

from core.artifacts import Diarization, DiarizedSpeaker, Identification
from core.errors import BadInput
from stages import identify
from stages.identify import Voiceprint
from tests.fakes import FakeEncoder

MODEL = "fake-encoder@1"


def unit(*v: float) -> list[float]:
    a = np.asarray(v, dtype=float)
    return list(a / np.linalg.norm(a))


def diarization(*embeddings: list[float] | None) -> Diarization:
    return Diarization(
        turns=[],
        exclusive_turns=[],
        speakers=[
            DiarizedSpeaker(label=f"S{i}", talk_time_s=1.0, embedding=e)
            for i, e in enumerate(embeddings, start=1)
        ],
        embedding_model=MODEL,
    )


def vp(id_: str, *v: float, model: str = MODEL) -> Voiceprint:
    return Voiceprint(id=id_, name=id_.title(), embedding=unit(*v), model=model)


def by_label(result: Identification) -> dict[str, tuple[str | None, float | None]]:
    return {m.label: (m.speaker_id, m.score) for m in result.matches}


def test_each_cluster_gets_its_closest_voiceprint() -> None:
    d = diarization(unit(1, 0, 0), unit(0, 1, 0))
    result = identify.run(
        d, [vp("bob", 0, 1, 0.1), vp("alice", 1, 0.1, 0)], threshold=0.6, embedding_model=MODEL
    )
    ids = by_label(result)
    assert ids["S1"][0] == "alice" and ids["S2"][0] == "bob"
    assert ids["S1"][1] == pytest.approx(0.995, abs=1e-3)
    assert result.matches[0].name == "Alice" and result.embedding_model == MODEL


def test_assignment_is_one_to_one_and_maximises_the_total() -> None:
    # Greedy would give alice to S1 (0.99) and leave S2 with bob (0.16); the optimum swaps.
    d = diarization(unit(1, 0.15), unit(1, -0.9))
    alice, bob = vp("alice", 1, 0), vp("bob", 1, 0.8)
    ids = by_label(identify.run(d, [alice, bob], threshold=0.0, embedding_model=MODEL))
    assert {ids["S1"][0], ids["S2"][0]} == {"alice", "bob"}
    assert ids["S1"][0] == "bob"


def test_below_threshold_stays_unnamed_but_reports_its_best_score() -> None:
    d = diarization(unit(1, 1, 0))
    result = identify.run(d, [vp("alice", 1, 0, 0)], threshold=0.9, embedding_model=MODEL)
    m = result.matches[0]
    assert m.speaker_id is None and m.name is None
    assert m.score == pytest.approx(0.7071, abs=1e-4)
    assert result.threshold == 0.9


def test_more_clusters_than_voiceprints() -> None:
    d = diarization(unit(1, 0), unit(0, 1), unit(1, 1))
    ids = by_label(identify.run(d, [vp("alice", 0, 1)], threshold=0.5, embedding_model=MODEL))
    assert ids["S2"][0] == "alice"
    assert ids["S1"][0] is None and ids["S3"][0] is None
    assert ids["S3"][1] == pytest.approx(0.7071, abs=1e-4)  # best score still there


def test_voiceprints_of_another_model_are_ignored() -> None:
    d = diarization(unit(1, 0))
    result = identify.run(
        d, [vp("alice", 1, 0, model="other@2")], threshold=0.5, embedding_model=MODEL
    )
    assert result.matches[0].speaker_id is None and result.matches[0].score is None


def test_clusters_without_embedding_and_no_voiceprints() -> None:
    d = diarization(None, unit(1, 0))
    result = identify.run(d, [], threshold=0.5, embedding_model=MODEL)
    assert [(m.label, m.speaker_id, m.score) for m in result.matches] == [
        ("S1", None, None),
        ("S2", None, None),
    ]
    with_vp = identify.run(d, [vp("alice", 1, 0)], threshold=0.5, embedding_model=MODEL)
    assert by_label(with_vp) == {"S1": (None, None), "S2": ("alice", 1.0)}


def test_unknown_diarization_model_names_nobody() -> None:
    d = diarization(unit(1, 0))
    assert (
        identify.run(d, [vp("alice", 1, 0)], threshold=0.5, embedding_model=None)
        .matches[0]
        .speaker_id
        is None
    )


def test_dimension_mismatch_is_bad_input() -> None:
    with pytest.raises(BadInput, match="re-enroll"):
        identify.run(
            diarization(unit(1, 0)), [vp("alice", 1, 0, 0)], threshold=0.5, embedding_model=MODEL
        )


def clip(*head: float, seconds: float = 1.5) -> np.ndarray:
    audio = np.zeros(int(seconds * 16000), dtype=np.float32)
    audio[: len(head)] = head
    return audio


def test_enroll_embedding_averages_normalised_clips() -> None:
    emb = identify.enroll_embedding([clip(2, 0, 0, 0), clip(0, 0.5, 0, 0)], FakeEncoder())
    assert emb == pytest.approx(unit(1, 1, 0, 0))
    assert np.linalg.norm(emb) == pytest.approx(1.0)


@pytest.mark.parametrize("clips", [[], [clip(1, 0, 0, 0, seconds=0.5)]])
def test_enroll_rejects_missing_or_short_clips(clips: list[np.ndarray]) -> None:
    with pytest.raises(BadInput):
        identify.enroll_embedding(clips, FakeEncoder())


# ---------------------------------------------------------------- threshold: where it comes from


def test_threshold_resolution_order() -> None:
    assert identify.resolve_threshold(0.3, 0.5, 0.7) == (0.3, "job")
    assert identify.resolve_threshold(None, 0.5, 0.7) == (0.5, "settings")
    assert identify.resolve_threshold(None, None, 0.7) == (0.7, "calibrated")
    assert identify.resolve_threshold(None, None, None) == (identify.DEFAULT_THRESHOLD, "default")
    assert identify.resolve_threshold(0.0, None, 0.7) == (0.0, "job")  # 0 is a value, not unset


def test_shipped_threshold_for_the_packaged_encoder() -> None:
    packaged = "campp:campplus_cn_en_common@92f29b94e694"
    shipped = identify.SHIPPED_THRESHOLDS[packaged]
    assert identify.resolve_threshold(None, None, None, packaged) == (shipped, "shipped")
    # a local calibration and the overrides still win over the shipped value
    assert identify.resolve_threshold(None, None, 0.7, packaged) == (0.7, "calibrated")
    assert identify.resolve_threshold(None, 0.5, None, packaged) == (0.5, "settings")
    # other weights (another fingerprint) are not covered by it
    other = "campp:campplus_cn_en_common@000000000000"
    assert identify.resolve_threshold(None, None, None, other) == (
        identify.DEFAULT_THRESHOLD,
        "default",
    )


def test_calibrated_threshold_meets_the_target_far() -> None:
    same = [0.7, 0.8, 0.9, 0.95]
    different = [i / 100 for i in range(100)]  # 0.00 .. 0.99
    threshold, far, frr = identify.choose_threshold(same, different, target_far=0.01)
    assert far <= 0.01
    assert 0.98 < threshold <= 0.99  # one impostor (0.99) may pass, 0.98 must not
    assert frr == 1.0  # every true score is below: the data say this model cannot separate


def test_calibrated_threshold_is_the_lowest_that_separates() -> None:
    same = [0.6, 0.8, 0.9]
    different = [0.1, 0.2, 0.3, 0.35]
    threshold, far, frr = identify.choose_threshold(same, different, target_far=0.0)
    assert (far, frr) == (0.0, 0.0)
    assert 0.35 < threshold < 0.6
    with pytest.raises(BadInput):
        identify.choose_threshold([], different)
