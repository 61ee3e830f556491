"""Identification out of the box: enroll people from one recording, name them in another,
with the threshold a fresh install resolves (no `scribe calibrate` run).

    python -m bench.identify [--recipes windowed,pyannote] [--enroll-s 20]

For each pair (enrollment meeting -> meeting to identify in) of the mix/ meetings, each
chosen speaker is enrolled from the first `--enroll-s` seconds of their reference turns in
the enrollment meeting (cut from the audio, one clip per turn, as a user would upload
them), with the stage code (identify.enroll_embedding and the packaged CAM++ encoder).
The other meeting is diarized by each recipe and identified by identify.run with the
threshold identify.resolve_threshold gives when nothing is calibrated locally (the one
shipped for the encoder's model id). Scored with bench/eval.py's identification_scores:
top-1 on the enrolled speakers present, false accepts on the others.

Pairs: 4-speaker -> 10-speaker (4 enrolled present, 6 strangers) and 10-speaker ->
4-speaker with 5 enrolled (2 present, 2 strangers); plus the enrollment.tsv clips
(LibriSpeech utterances never used in the meetings) -> both meetings.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from bench._common import AUDIO, base_parser, md_table, write_json  # noqa: E402
from bench.diarize import build, decode, run_one  # noqa: E402
from bench.eval import annotation, identification_scores, load_rttm, read_enrollment  # noqa: E402

MEETING_4 = "mix/meeting_4spk.wav"
MEETING_10 = "mix/meeting_long_10spk.flac"
# 10 -> 4: two who are in the 4-speaker meeting, three who are not
ENROLL_FROM_10 = ["1998", "3005", "367", "533", "1688"]


def clips_from(audio: Any, rttm: Path, speakers: list[str], seconds: float) -> dict[str, list[Any]]:
    turns: dict[str, list[tuple[float, float]]] = {}
    for line in rttm.read_text().splitlines():
        p = line.split()
        if len(p) >= 8 and p[0] == "SPEAKER" and p[7] in speakers:
            start = float(p[3])
            turns.setdefault(p[7], []).append((start, start + float(p[4])))
    out: dict[str, list[Any]] = {}
    for spk in speakers:
        got, clips = 0.0, []
        for start, end in sorted(turns.get(spk, [])):
            if got >= seconds:
                break
            end = min(end, start + seconds - got)
            if end - start < 1.0:  # enrollment refuses clips under a second
                continue
            clips.append(audio[int(start * 16000) : int(end * 16000)])
            got += end - start
        out[spk] = clips
    return out


def main(argv: list[str] | None = None) -> int:
    p = base_parser("identify", __doc__.split("\n")[0])
    p.add_argument("--recipes", default="windowed,pyannote")
    p.add_argument("--enroll-s", type=float, default=20.0)
    args = p.parse_args(argv)

    from core.artifacts import Diarization
    from core.settings import Settings
    from stages import identify
    from stages.engines.models import ModelManager

    encoder = ModelManager(Settings()).encoder()
    threshold, source = identify.resolve_threshold(None, None, None, encoder.model_id)
    print(f"threshold {threshold} ({source}) for {encoder.model_id}", file=sys.stderr)

    audio = {m: decode(AUDIO / m) for m in (MEETING_4, MEETING_10)}
    rttm = {m: (AUDIO / m).with_suffix(".rttm") for m in (MEETING_4, MEETING_10)}
    four = sorted(load_rttm(rttm[MEETING_4]).labels())
    enrollments: dict[str, tuple[dict[str, list[Any]], list[str]]] = {
        "from 4-spk meeting": (
            clips_from(audio[MEETING_4], rttm[MEETING_4], four, args.enroll_s),
            [MEETING_10],
        ),
        "from 10-spk meeting": (
            clips_from(audio[MEETING_10], rttm[MEETING_10], ENROLL_FROM_10, args.enroll_s),
            [MEETING_4],
        ),
    }
    tsv = read_enrollment(AUDIO / "mix" / "enrollment.tsv")
    first5 = dict(list(tsv.items())[:5])
    enrollments["enrollment.tsv (5)"] = (
        {k: [decode(c) for c in v] for k, v in first5.items()},
        [MEETING_4, MEETING_10],
    )

    diarized: dict[tuple[str, str], Diarization] = {}
    rows: list[list[Any]] = []
    records: list[dict[str, Any]] = []
    totals: dict[str, list[int]] = {}
    for recipe in args.recipes.split(","):
        engine = build(recipe)
        for label, (clips, targets) in enrollments.items():
            prints = [
                identify.Voiceprint(
                    id=spk,
                    name=spk,
                    model=encoder.model_id,
                    embedding=identify.enroll_embedding(c, encoder),
                )
                for spk, c in clips.items()
            ]
            for target in targets:
                if (recipe, target) not in diarized:
                    diarized[(recipe, target)], _ = run_one(engine, audio[target])
                d = diarized[(recipe, target)]
                ident = identify.run(
                    d, prints, threshold=threshold, embedding_model=encoder.model_id
                )
                named = {m.label: m.name for m in ident.matches}
                ref = load_rttm(rttm[target])
                hyp = annotation([(t.start, t.end, t.speaker) for t in d.turns])
                s = identification_scores(ref, hyp, named, set(clips))
                t = totals.setdefault(recipe, [0, 0, 0, 0])
                t[0] += s["top1_correct"]
                t[1] += s["enrolled_present"]
                t[2] += s["false_accepts"]
                t[3] += s["not_enrolled_present"]
                scores = sorted((m.score or 0.0 for m in ident.matches), reverse=True)
                rows.append(
                    [
                        recipe,
                        label,
                        target,
                        f"{s['top1_correct']}/{s['enrolled_present']}",
                        f"{s['false_accepts']}/{s['not_enrolled_present']}",
                        ", ".join(f"{x:.2f}" for x in scores),
                    ]
                )
                records.append(
                    {
                        "recipe": recipe,
                        "enrollment": label,
                        "target": target,
                        **{k: v for k, v in s.items() if k != "speakers"},
                        "speakers": s["speakers"],
                        "scores": scores,
                    }
                )
                print(
                    f"  {recipe} {label} -> {target}: {rows[-1][3]} named, "
                    f"{rows[-1][4]} strangers named",
                    file=sys.stderr,
                )
    for recipe, t in totals.items():
        rows.append(
            [
                f"**{recipe}, all**",
                "",
                "",
                f"{t[0]}/{t[1]} ({100 * t[0] / max(t[1], 1):.0f} %)",
                f"{t[2]}/{t[3]}",
                "",
            ]
        )
    table = md_table(
        [
            "recipe",
            "enrolled",
            "identified in",
            "enrolled named",
            "strangers named",
            "best score per cluster",
        ],
        rows,
    )
    write_json(
        args.out,
        {
            "threshold": threshold,
            "threshold_source": source,
            "model": encoder.model_id,
            "results": records,
            "markdown": table,
        },
    )
    print(f"threshold {threshold} ({source}), encoder {encoder.model_id}\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
