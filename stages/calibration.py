"""Calibrate the identification threshold for the speaker-embedding model in use.

Each speaker folder of a data directory (LibriSpeech layout: `<speaker>/<utterance>.flac`
or `.wav`) is enrolled from two utterances (those named in an `enrollment.tsv` when one
lists them, else the first two by name), exactly as `POST /v1/speakers` does
(identify.enroll_embedding). Every other utterance is scored by cosine against every
voiceprint: its own speaker's score is a same-speaker score, the others are
different-speaker scores. The threshold is the lowest one whose false-accept rate is at most
the target, where a false accept is (rule `open-set`, the default) a voice whose best score
against the *other* speakers' prints passes, i.e. a stranger named after someone enrolled,
or (rule `pairwise`) one wrong pair passing. Open-set is the default because identify
compares each voice with every print at once.

The result is stored in the `calibrations` table keyed by the encoder's model id; the
identify stage then uses it for that model unless a job or SCRIBE_IDENTIFY_THRESHOLD
overrides it. Used by `scribe calibrate` and `python -m bench.calibrate`.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from core.errors import BadInput
from core.events import ProgressCallback, no_progress
from core.settings import Settings
from stages.engines.base import SpeakerEncoder
from stages.identify import DEFAULT_TARGET_FAR, choose_threshold, enroll_embedding

if TYPE_CHECKING:
    from storage.calibration import CalibrationStore

Rule = Literal["open-set", "pairwise"]
RULES: tuple[Rule, ...] = ("open-set", "pairwise")
ENROLL_PER_SPEAKER = 2
AUDIO_SUFFIXES = (".flac", ".wav")
# The LibriSpeech speakers a source checkout carries (what the tests and benchmarks use).
DEFAULT_AUDIO_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "audio" / "librispeech"


def enrollment_clips(audio: Path) -> dict[str, set[str]]:
    """Utterance file names to enroll each speaker from, per speaker folder name, from an
    `enrollment.tsv` (columns `speaker`, `utterance`) in `audio` or, in the test
    audio layout, in `../mix/`. Empty when there is none: the first two are used."""
    chosen: dict[str, set[str]] = {}
    for tsv in (audio / "enrollment.tsv", audio.parent / "mix" / "enrollment.tsv"):
        if not tsv.exists():
            continue
        with open(tsv, encoding="utf-8", newline="") as f:
            for r in csv.DictReader(f, delimiter="\t"):
                chosen.setdefault(r["speaker"], set()).add(Path(r["utterance"]).name)
        break
    return chosen


def summary(values: list[float]) -> dict[str, float]:
    s = sorted(values)

    def q(p: float) -> float:
        pos = (len(s) - 1) * p
        lo = math.floor(pos)
        hi = min(lo + 1, len(s) - 1)
        return s[lo] + (s[hi] - s[lo]) * (pos - lo)

    return {
        "n": len(s),
        "min": s[0],
        "p01": q(0.01),
        "p05": q(0.05),
        "p50": q(0.5),
        "p95": q(0.95),
        "p99": q(0.99),
        "max": s[-1],
        "mean": sum(s) / len(s),
    }


def histogram(
    values: list[float], lo: float = -0.4, hi: float = 1.0, width: float = 0.1
) -> list[tuple[str, int]]:
    bins = []
    edge = lo
    while edge < hi - 1e-9:
        top = edge + width
        bins.append(
            (
                f"{edge:+.1f}…{top:+.1f}",
                sum(edge <= v < top or (top >= hi and v >= hi) for v in values),
            )
        )
        edge = top
    below = sum(v < lo for v in values)
    if below:
        bins.insert(0, (f"< {lo:+.1f}", below))
    return bins


def _load(path: Path) -> np.ndarray:
    from faster_whisper import decode_audio

    try:
        audio: np.ndarray = decode_audio(str(path), sampling_rate=16000)
    except Exception as exc:  # PyAV raises its own error types for unreadable files
        raise BadInput(f"cannot decode {path}: {exc}") from None
    return audio


@dataclass(frozen=True)
class SpeakerClips:
    """One speaker folder: the utterances it is enrolled from and those scored."""

    speaker: str
    enroll: list[Path]
    tests: list[Path]


def plan_utterances(audio: Path, per_speaker: int = 0) -> list[SpeakerClips]:
    """The speakers under `audio` with their enrollment and test utterances
    (`per_speaker`: at most that many test utterances each; 0: all). BadInput when fewer
    than two speakers have both, since there would be no different-speaker score."""
    if not audio.is_dir():
        raise BadInput(f"{audio} is not a directory of speaker folders")
    chosen = enrollment_clips(audio)
    plan: list[SpeakerClips] = []
    for spk in sorted(p for p in audio.iterdir() if p.is_dir()):
        utts = sorted(u for u in spk.iterdir() if u.suffix.lower() in AUDIO_SUFFIXES)
        names = chosen.get(spk.name) or {u.name for u in utts[:ENROLL_PER_SPEAKER]}
        enroll = [u for u in utts if u.name in names]
        tests = [u for u in utts if u.name not in names]
        if per_speaker:  # the enrollment clips plus the first N others
            tests = tests[:per_speaker]
        if enroll and tests:
            plan.append(SpeakerClips(spk.name, enroll, tests))
    if len(plan) < 2:
        raise BadInput(
            f"{audio} has {len(plan)} usable speaker folder(s); calibration needs at least"
            f" two, each with {ENROLL_PER_SPEAKER + 1} or more .flac or .wav utterances"
            f" ({ENROLL_PER_SPEAKER} to enroll, the others to score)"
        )
    return plan


def scores(
    plan: list[SpeakerClips], encoder: SpeakerEncoder, progress: ProgressCallback = no_progress
) -> dict[str, Any]:
    """Same-speaker, different-speaker and best-wrong-print scores: each speaker's print
    from its enrollment clips, compared with every test utterance's embedding."""
    total = float(sum(len(c.enroll) + len(c.tests) for c in plan))
    done = 0
    progress("embed", 0.0, total)
    prints: dict[str, np.ndarray] = {}
    tests_embedded: list[tuple[str, np.ndarray]] = []
    for clips in plan:
        prints[clips.speaker] = np.asarray(
            enroll_embedding([_load(u) for u in clips.enroll], encoder)
        )
        done += len(clips.enroll)
        progress("embed", float(done), total)
        for u in clips.tests:
            tests_embedded.append((clips.speaker, encoder.embed(_load(u))))
            done += 1
            progress("embed", float(done), total)

    same: list[float] = []
    different: list[float] = []
    best_wrong: list[float] = []  # what this voice scores if its own print were not enrolled
    top1 = 0
    for speaker, emb in tests_embedded:
        sims = {name: float(np.dot(emb, vp)) for name, vp in prints.items()}
        top1 += max(sims, key=lambda k: sims[k]) == speaker
        for name, sim in sims.items():
            (same if name == speaker else different).append(sim)
        best_wrong.append(max(v for k, v in sims.items() if k != speaker))
    return {
        "speakers": sorted(prints),
        "test_utterances": len(tests_embedded),
        "top1_unthresholded": top1 / len(tests_embedded),
        "same": same,
        "different": different,
        "best_wrong": best_wrong,
    }


def calibrate(
    audio: Path,
    target_far: float = DEFAULT_TARGET_FAR,
    per_speaker: int = 0,
    rule: Rule = "open-set",
    *,
    settings: Settings | None = None,
    progress: ProgressCallback = no_progress,
) -> dict[str, Any]:
    """Score the data under `audio` with the settings' speaker encoder and choose the
    threshold: `{"model", "threshold", "target_far", "far", "frr", "details"}`."""
    from stages.engines.models import ModelManager

    if rule not in RULES:
        raise BadInput(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")
    if not 0.0 <= target_far <= 1.0:
        raise BadInput(f"the target false-accept rate must be in [0, 1], got {target_far}")
    plan = plan_utterances(audio, per_speaker)  # before loading the model: fail fast
    manager = ModelManager(settings or Settings())
    encoder = manager.encoder()
    model = manager.encoder_id()
    t0 = time.perf_counter()
    s = scores(plan, encoder, progress)
    # pairwise: one voice against one print. open-set: a non-enrolled voice against the
    # whole enrolled set (its best wrong score), which is what naming a stranger takes.
    impostors = s["best_wrong"] if rule == "open-set" else s["different"]
    threshold, far, frr = choose_threshold(s["same"], impostors, target_far)
    open_far = sum(x >= threshold for x in s["best_wrong"]) / len(s["best_wrong"])
    return {
        "model": model,
        "threshold": threshold,
        "target_far": target_far,
        "far": far,
        "frr": frr,
        "details": {
            "rule": rule,
            "open_set_far": open_far,
            "scores": {k: [round(x, 5) for x in s[k]] for k in ("same", "different", "best_wrong")},
            "audio": audio.name,
            "speakers": s["speakers"],
            "test_utterances": s["test_utterances"],
            "top1_unthresholded": s["top1_unthresholded"],
            "same": summary(s["same"]),
            "different": summary(s["different"]),
            "best_wrong": summary(s["best_wrong"]),
            "histogram_same": histogram(s["same"]),
            "histogram_different": histogram(s["different"]),
            "wall_s": round(time.perf_counter() - t0, 1),
        },
    }


async def save(calibrations: CalibrationStore, result: dict[str, Any]) -> None:
    """Store (or replace) a `calibrate` result for its model: identify uses it from now on."""
    await calibrations.save(
        model=result["model"],
        threshold=result["threshold"],
        target_far=result["target_far"],
        far=result["far"],
        frr=result["frr"],
        details=result["details"],
    )


def headline(r: dict[str, Any]) -> str:
    """One paragraph: the threshold, its FAR and FRR with their counts, the data."""
    d = r["details"]
    n_imp = d["best_wrong" if d.get("rule") == "open-set" else "different"]["n"]
    return (
        f"Model `{r['model']}`: threshold **{r['threshold']:.3f}** for a target FAR of "
        f"{100 * r['target_far']:g} %: FAR {100 * r['far']:.2f} % "
        f"({round(r['far'] * n_imp)}/{n_imp}), "
        f"FRR {100 * r['frr']:.2f} % ({round(r['frr'] * d['same']['n'])}/{d['same']['n']}); "
        f"{len(d['speakers'])} speakers, {d['test_utterances']} test utterances, "
        f"top-1 without threshold {100 * d['top1_unthresholded']:.1f} %. Rule: {d['rule']}; "
        f"open-set FAR (a non-enrolled voice's best score against the other "
        f"{len(d['speakers']) - 1} prints) {100 * d['open_set_far']:.1f} %."
    )


def markdown(r: dict[str, Any]) -> str:
    """The headline, the score summaries and the histogram, as Markdown."""
    d = r["details"]
    lines = [
        headline(r),
        "",
        "| scores | n | min | p1 | p5 | median | p95 | p99 | max |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("same", "different", "best_wrong"):
        s = d[name]
        label = {"best_wrong": "best wrong print"}.get(name, f"{name} speaker")
        lines.append(
            f"| {label} | {s['n']} | "
            + " | ".join(f"{s[k]:.3f}" for k in ("min", "p01", "p05", "p50", "p95", "p99", "max"))
            + " |"
        )
    lines += ["", "| cosine bin | same | different |", "|---|---|---|"]
    same = dict(d["histogram_same"])
    diff = dict(d["histogram_different"])
    for label in dict.fromkeys([*diff, *same]):
        lines.append(f"| {label} | {same.get(label, 0)} | {diff.get(label, 0)} |")
    return "\n".join(lines)
