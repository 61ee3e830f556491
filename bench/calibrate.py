"""Calibrate the identification threshold for the speaker-embedding model in use.

    python -m bench.calibrate [--audio ../shared/audio/librispeech] [--target-far 0.01]
        [--store] [--database-url URL] [--out bench/results/calibration.json]

Each speaker folder under `--audio` (LibriSpeech layout: `<speaker>/<utterance>.flac`) is
enrolled from two utterances (those named in `mix/enrollment.tsv` when it lists them, else
the first two), exactly as `POST /v1/speakers` does (identify.enroll_embedding). Every other
utterance is scored by cosine against every voiceprint: its own speaker's score is a
same-speaker score, the others are different-speaker scores. The threshold is the lowest
one whose false-accept rate is at most `--target-far`, where a false accept is (default,
`--rule open-set`) a voice whose best score against the *other* speakers' prints passes,
i.e. a stranger named after someone enrolled, or (`--rule pairwise`) one wrong pair passing.
Open-set is the default because identify compares each voice with every print: on
meeting_4spk a non-enrolled speaker scored 0.371 against an enrolled print, above the
pairwise-calibrated 0.363, and was left unnamed only because that print went to its owner.

The result is written as JSON and, with `--store`, into the `calibrations` table
(migrations/004_calibration.sql) of the database in the settings (SCRIBE_DATABASE_URL) or
`--database-url`, keyed by the encoder's model id. The identify stage then uses it for
that model unless a job or SCRIBE_IDENTIFY_THRESHOLD overrides it; another model (new
weights) has no calibration until this is run again for it.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench._common import AUDIO, RESULTS, write_json

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")


def enrollment_clips(audio: Path) -> dict[str, set[str]]:
    tsv = audio.parent / "mix" / "enrollment.tsv"
    chosen: dict[str, set[str]] = {}
    if tsv.exists():
        with open(tsv, encoding="utf-8", newline="") as f:
            for r in csv.DictReader(f, delimiter="\t"):
                chosen.setdefault(r["speaker"], set()).add(Path(r["utterance"]).name)
    return chosen


def summary(values: list[float]) -> dict[str, float]:
    s = sorted(values)

    def q(p: float) -> float:
        pos = (len(s) - 1) * p
        lo = math.floor(pos)
        hi = min(lo + 1, len(s) - 1)
        return s[lo] + (s[hi] - s[lo]) * (pos - lo)

    return {"n": len(s), "min": s[0], "p01": q(0.01), "p05": q(0.05), "p50": q(0.5),
            "p95": q(0.95), "p99": q(0.99), "max": s[-1],
            "mean": sum(s) / len(s)}


def histogram(values: list[float], lo: float = -0.4, hi: float = 1.0, width: float = 0.1
              ) -> list[tuple[str, int]]:
    bins = []
    edge = lo
    while edge < hi - 1e-9:
        top = edge + width
        bins.append((f"{edge:+.1f}…{top:+.1f}",
                     sum(edge <= v < top or (top >= hi and v >= hi) for v in values)))
        edge = top
    below = sum(v < lo for v in values)
    if below:
        bins.insert(0, (f"< {lo:+.1f}", below))
    return bins


def scores(audio: Path, encoder: Any, per_speaker: int = 0) -> dict[str, Any]:
    import numpy as np
    from faster_whisper import decode_audio

    from stages.identify import enroll_embedding

    chosen = enrollment_clips(audio)
    speakers = sorted(p for p in audio.iterdir() if p.is_dir())
    prints: dict[str, Any] = {}
    tests: list[tuple[str, str, Any]] = []
    for spk in speakers:
        utts = sorted(spk.glob("*.flac")) + sorted(spk.glob("*.wav"))
        names = chosen.get(spk.name) or {u.name for u in utts[:2]}
        if per_speaker:  # the enrollment clips plus the first N others
            utts = [u for u in utts if u.name in names] + [
                u for u in utts if u.name not in names
            ][:per_speaker]
        enroll = [u for u in utts if u.name in names]
        if len(enroll) < 1 or len(utts) <= len(enroll):
            continue
        prints[spk.name] = np.asarray(enroll_embedding(
            [decode_audio(str(u), sampling_rate=16000) for u in enroll], encoder))
        for u in utts:
            if u.name not in names:
                tests.append((spk.name, u.name, encoder.embed(
                    decode_audio(str(u), sampling_rate=16000))))
    same: list[float] = []
    different: list[float] = []
    best_wrong: list[float] = []  # what this voice scores if its own print were not enrolled
    top1 = 0
    for speaker, _, emb in tests:
        sims = {name: float(np.dot(emb, vp)) for name, vp in prints.items()}
        top1 += max(sims, key=lambda k: sims[k]) == speaker
        for name, sim in sims.items():
            (same if name == speaker else different).append(sim)
        best_wrong.append(max(v for k, v in sims.items() if k != speaker))
    return {"speakers": sorted(prints), "test_utterances": len(tests),
            "top1_unthresholded": top1 / len(tests) if tests else math.nan,
            "same": same, "different": different, "best_wrong": best_wrong}


async def store(database_url: str, model: str, result: dict[str, Any]) -> None:
    from storage.db import create_pool, migrate
    from storage.jobs import JobStore

    pool = await create_pool(database_url, max_size=1)
    try:
        await migrate(pool)
        await JobStore(pool).save_calibration(
            model=model, threshold=result["threshold"], target_far=result["target_far"],
            far=result["far"], frr=result["frr"], details=result["details"])
    finally:
        await pool.close()


def calibrate(
    audio: Path, target_far: float, per_speaker: int = 0, rule: str = "open-set"
) -> dict[str, Any]:
    from core.settings import Settings
    from stages.engines.models import ModelManager
    from stages.identify import choose_threshold

    manager = ModelManager(Settings())
    encoder = manager.encoder()
    model = manager.encoder_id()
    t0 = time.perf_counter()
    s = scores(audio, encoder, per_speaker)
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
            "scores": {k: [round(x, 5) for x in s[k]]
                       for k in ("same", "different", "best_wrong")},
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


def markdown(r: dict[str, Any]) -> str:
    d = r["details"]
    n_imp = d["best_wrong" if d.get("rule") == "open-set" else "different"]["n"]
    lines = [
        f"Model `{r['model']}`: threshold **{r['threshold']:.3f}** for a target FAR of "
        f"{100 * r['target_far']:g} %: FAR {100 * r['far']:.2f} % "
        f"({round(r['far'] * n_imp)}/{n_imp}), "
        f"FRR {100 * r['frr']:.2f} % ({round(r['frr'] * d['same']['n'])}/{d['same']['n']}); "
        f"{len(d['speakers'])} speakers, {d['test_utterances']} test utterances, "
        f"top-1 without threshold {100 * d['top1_unthresholded']:.1f} %. Rule: {d['rule']}; "
        f"open-set FAR (a non-enrolled voice's best score against the other "
        f"{len(d['speakers']) - 1} prints) {100 * d['open_set_far']:.1f} %.",
        "",
        "| scores | n | min | p1 | p5 | median | p95 | p99 | max |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("same", "different", "best_wrong"):
        s = d[name]
        label = {"best_wrong": "best wrong print"}.get(name, f"{name} speaker")
        lines.append(f"| {label} | {s['n']} | " + " | ".join(
            f"{s[k]:.3f}" for k in ("min", "p01", "p05", "p50", "p95", "p99", "max")) + " |")
    lines += ["", "| cosine bin | same | different |", "|---|---|---|"]
    same = dict(d["histogram_same"])
    diff = dict(d["histogram_different"])
    for label in dict.fromkeys([*diff, *same]):
        lines.append(f"| {label} | {same.get(label, 0)} | {diff.get(label, 0)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.calibrate",
                                description=__doc__.split("\n")[0])
    p.add_argument("--audio", type=Path, default=AUDIO / "librispeech",
                   help="folder of speaker folders of utterances")
    p.add_argument("--target-far", type=float, default=0.01)
    p.add_argument("--rule", choices=("pairwise", "open-set"), default="open-set",
                   help="impostor scores: every wrong pair, or each voice's best wrong print")
    p.add_argument("--per-speaker", type=int, default=0,
                   help="score at most N utterances per speaker (0: all)")
    p.add_argument("--store", action="store_true",
                   help="write the threshold into the calibrations table")
    p.add_argument("--database-url", default=None,
                   help="database for --store (default: the settings' database_url)")
    p.add_argument("--out", type=Path, default=RESULTS / "calibration.json")
    args = p.parse_args(argv)

    result = calibrate(args.audio, args.target_far, args.per_speaker, args.rule)
    result["markdown"] = markdown(result)
    write_json(args.out, result)
    print(result["markdown"])
    if args.store:
        from core.settings import Settings

        url = args.database_url or Settings().database_url
        if not url:
            print("--store needs --database-url or SCRIBE_DATABASE_URL", file=sys.stderr)
            return 2
        asyncio.run(store(url, result["model"], result))
        print(f"stored for {result['model']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
