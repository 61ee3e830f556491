"""identify's naming rules: s-norm against a cohort, the margin over the second-best
voiceprint, the minimum of clean speech, suggestions; and stages/voice.py's clean spans
and clip agreement."""

from __future__ import annotations

import numpy as np
import pytest

from core.artifacts import Diarization, DiarizedSpeaker, Identification, SpeakerMatch, Turn
from stages import cohort as cohort_mod
from stages import identify, voice
from stages.identify import IdentifyRules, Voiceprint

MODEL = "fake-encoder@1"


def unit(*v: float) -> list[float]:
    a = np.asarray(v, dtype=float)
    return list(a / np.linalg.norm(a))


def speaker(label: str, emb: list[float], clean: float | None = 30.0) -> DiarizedSpeaker:
    return DiarizedSpeaker(label=label, talk_time_s=40.0, embedding=emb, clean_speech_s=clean)


def diarization(*speakers: DiarizedSpeaker) -> Diarization:
    return Diarization(turns=[], exclusive_turns=[], speakers=list(speakers), embedding_model=MODEL)


def vp(id_: str, *v: float) -> Voiceprint:
    return Voiceprint(id=id_, name=id_.title(), embedding=unit(*v), model=MODEL)


def match(result: Identification, label: str) -> SpeakerMatch:
    return next(m for m in result.matches if m.label == label)


# ---------------------------------------------------------------- s-norm


def test_snorm_rescales_by_each_sides_cohort_scores() -> None:
    rng = np.random.default_rng(0)
    cohort = rng.standard_normal((30, 8)).astype(np.float32)
    cohort /= np.linalg.norm(cohort, axis=1, keepdims=True)
    t = cohort[:1] * 0.5 + rng.standard_normal((1, 8)).astype(np.float32) * 0.1
    t /= np.linalg.norm(t)
    p = rng.standard_normal((2, 8)).astype(np.float32)
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    sim = t @ p.T
    got = cohort_mod.snorm(sim, t, p, cohort, top_k=5)
    # by hand: mean and sd of the 5 best cohort scores of each side
    ts = np.sort(t @ cohort.T, axis=1)[:, ::-1][:, :5]
    ps = np.sort(p @ cohort.T, axis=1)[:, ::-1][:, :5]
    want = 0.5 * (
        (sim - ts.mean(1)[:, None]) / ts.std(1)[:, None]
        + (sim - ps.mean(1)[None, :]) / ps.std(1)[None, :]
    )
    assert got == pytest.approx(want, abs=1e-5)


def test_snorm_lowers_a_voiceprint_that_scores_high_against_everyone() -> None:
    # Two voiceprints with the same cosine (0.374) to the test voice; the first (a "hub")
    # also scores 0.3-0.6 against the four cohort voices, the second -0.1-0.2 (same spread):
    # the hub's normalised score is the lower one.
    cohort = np.eye(6, dtype=np.float32)[:4]
    test = np.asarray([[0, 0, 0, 0, 1, 0]], dtype=np.float32)
    x = np.sqrt(0.14)
    hub = [0.6, 0.5, 0.4, 0.3, x, 0.0]
    loner = [0.2, 0.1, 0.0, -0.1, x, np.sqrt(1 - 0.06 - 0.14)]
    prints = np.asarray([hub, loner], dtype=np.float32)
    z = cohort_mod.snorm(test @ prints.T, test, prints, cohort, top_k=4)
    sd = np.std([0.6, 0.5, 0.4, 0.3])
    assert z[0, 1] - z[0, 0] == pytest.approx(0.5 * 0.4 / sd, rel=1e-4)


def test_the_shipped_cohort_is_loaded_for_the_packaged_encoder_only() -> None:
    packaged = "campp:campplus_cn_en_common@92f29b94e694"
    c = cohort_mod.load_cohort(packaged)
    assert c is not None and c.shape[1] == 192 and c.shape[0] >= 20
    assert np.linalg.norm(c, axis=1) == pytest.approx(np.ones(len(c)), abs=1e-5)
    assert cohort_mod.load_cohort(MODEL) is None and cohort_mod.load_cohort(None) is None
    assert identify.shipped_rules(0.4, packaged).snorm_threshold is not None
    assert identify.shipped_rules(0.4, MODEL) == IdentifyRules(threshold=0.4)


# ---------------------------------------------------------------- margin, clean speech


def test_margin_leaves_a_speaker_between_two_voiceprints_unnamed() -> None:
    d = diarization(speaker("S1", unit(1, 1, 0.05)))
    prints = [vp("alice", 1, 0, 0), vp("bob", 0, 1, 0)]
    plain = identify.run(d, prints, threshold=0.5, embedding_model=MODEL)
    assert match(plain, "S1").speaker_id is not None  # without the rule: a coin toss
    ruled = identify.run(
        d, prints, threshold=0.5, embedding_model=MODEL, rules=IdentifyRules(0.5, margin=0.05)
    )
    m = match(ruled, "S1")
    assert m.speaker_id is None and m.why is not None and "margin" in m.why


def test_margin_passes_a_clear_best() -> None:
    d = diarization(speaker("S1", unit(1, 0.2, 0)))
    prints = [vp("alice", 1, 0, 0), vp("bob", 0, 1, 0)]
    result = identify.run(
        d, prints, threshold=0.5, embedding_model=MODEL, rules=IdentifyRules(0.5, margin=0.05)
    )
    assert match(result, "S1").speaker_id == "alice"


def test_margin_refuses_a_name_the_assignment_forced() -> None:
    # Both speakers sound most like alice; the assignment gives the second one bob, whom
    # it does not sound like most: with a margin it stays unnamed.
    d = diarization(speaker("S1", unit(1, 0.1, 0)), speaker("S2", unit(1, 0.6, 0)))
    prints = [vp("alice", 1, 0, 0), vp("bob", 0, 1, 0)]
    rules = IdentifyRules(0.3, margin=0.05)
    result = identify.run(d, prints, threshold=0.3, embedding_model=MODEL, rules=rules)
    assert match(result, "S1").speaker_id == "alice"
    assert match(result, "S2").speaker_id is None


@pytest.mark.parametrize(("clean", "named"), [(4.9, False), (5.0, True), (None, True)])
def test_min_clean_speech(clean: float | None, named: bool) -> None:
    # None (an older artifact): the talk time (40 s) stands in for it
    d = diarization(speaker("S1", unit(1, 0, 0), clean=clean))
    rules = IdentifyRules(0.5, min_clean_s=5.0)
    result = identify.run(
        d, [vp("alice", 1, 0, 0)], threshold=0.5, embedding_model=MODEL, rules=rules
    )
    m = match(result, "S1")
    assert (m.speaker_id == "alice") is named
    if not named:
        assert m.why == "4.9 s of clean speech, 5 s needed"


# ---------------------------------------------------------------- suggestions


def test_close_below_the_threshold_is_a_suggestion_not_a_name() -> None:
    d = diarization(speaker("S1", unit(1, 0.9, 0)))  # cosine 0.74 with alice
    rules = IdentifyRules(0.8, suggest_below=0.1)
    result = identify.run(
        d, [vp("alice", 1, 0, 0)], threshold=0.8, embedding_model=MODEL, rules=rules
    )
    m = match(result, "S1")
    assert m.speaker_id is None and m.name is None
    assert m.suggestion is not None and m.suggestion.name == "Alice"
    assert m.suggestion.score == pytest.approx(0.7433, abs=1e-3) and m.suggestion.snorm is None


def test_far_below_the_threshold_is_no_suggestion() -> None:
    d = diarization(speaker("S1", unit(1, 2, 0)))  # cosine 0.45
    rules = IdentifyRules(0.8, suggest_below=0.1)
    result = identify.run(
        d, [vp("alice", 1, 0, 0)], threshold=0.8, embedding_model=MODEL, rules=rules
    )
    assert match(result, "S1").suggestion is None


def test_nobody_is_suggested_where_they_are_named() -> None:
    d = diarization(speaker("S1", unit(1, 0.05, 0)), speaker("S2", unit(1, 0.8, 0)))
    rules = IdentifyRules(0.9, suggest_below=0.5)
    result = identify.run(
        d, [vp("alice", 1, 0, 0)], threshold=0.9, embedding_model=MODEL, rules=rules
    )
    assert match(result, "S1").speaker_id == "alice"
    assert match(result, "S2").suggestion is None


def test_rules_round_trip_through_the_stage_params() -> None:
    rules = IdentifyRules(0.4, snorm_threshold=3.0, margin=0.05, min_clean_s=5, suggest_below=1)
    params = rules.as_params()
    assert params["score"] == "s-norm"
    assert IdentifyRules.from_params(0.4, params) == rules
    assert IdentifyRules.from_params(0.4, None) == IdentifyRules(0.4)


# ---------------------------------------------------------------- clean speech


def test_clean_spans_cut_overlap_and_turn_edges() -> None:
    turns = [
        Turn(start=0.0, end=10.0, speaker="S1"),
        Turn(start=4.0, end=5.0, speaker="S2"),  # overlap inside S1's turn
        Turn(start=12.0, end=12.8, speaker="S1"),  # 0.3 s once trimmed: dropped
    ]
    assert voice.clean_spans(turns, "S1") == [(0.25, 3.75), (5.25, 9.75)]
    assert voice.clean_spans(turns, "S2") == []  # all of S2 overlaps S1


def test_clips_of_two_people_are_named() -> None:
    a, b = np.asarray(unit(1, 0, 0)), np.asarray(unit(0, 1, 0))
    assert voice.disagreeing_clips([a, a * 0.9 + b * 0.1, a]) == []
    odd = voice.disagreeing_clips([a, a, b])
    assert [n for n, _ in odd] == [3]


@pytest.mark.parametrize(("clean", "suggested"), [(3.0, True), (0.5, False)])
def test_too_little_clean_speech_is_at_most_a_suggestion(clean: float, suggested: bool) -> None:
    # a clear match by its scores, but under the 5 s of clean speech that naming needs:
    # "Alice?" with 1 s or more, nothing below (overlap and turn edges only)
    d = diarization(speaker("S1", unit(1, 0.05, 0), clean=clean))
    rules = IdentifyRules(0.5, min_clean_s=5.0, suggest_below=0.1)
    result = identify.run(
        d, [vp("alice", 1, 0, 0)], threshold=0.5, embedding_model=MODEL, rules=rules
    )
    m = match(result, "S1")
    assert m.speaker_id is None and m.name is None
    assert (m.suggestion is not None) is suggested
    assert m.why == f"{clean:.1f} s of clean speech, 5 s needed"
