"""Identification on two conditions, measured step by step: enroll people from one
recording, name them in another, with the rest as strangers.

    python -m bench.identify [--fresh] [--steps all|final]

Conditions:

- **AMI cross-file** (far-field meeting audio): the dev set's AMI excerpts share people
  (MEE067, MEE068, MÉO069 in trn00, trn01, trn03; FEE087, FEE088, MEE089, MEO086 in trn07
  and trn08; FEE083 in trn06 and trn09; FEO066 in trn01 and trn02). For every ordered pair
  of files of a group, each person of the first is enrolled from their clean turns there
  (reference RTTM: alone, 0.25 s in from the turn edges, joined into one clip, through
  stages/voice.enroll_voiceprint, so a person with < 3 s of speech there is refused as the
  API would refuse them), then the second file is diarized by the system's diarizer and
  identified; the people of the second file not enrolled are strangers.
- **AMI, all enrolled**: every person enrollable from the other AMI files enrolled at once
  (more voiceprints to confuse), identified in each AMI file.
- **LibriSpeech mixes**: the constructed 4- and 10-speaker meetings, people enrolled from
  20 s of clean turns of the other meeting, or from the enrollment.tsv utterances.

Scoring, per named cluster: its reference speaker is the one it overlaps most; a name
that is not that speaker is *named wrongly* (an enrolled person's speech under another
name) or *stranger named*. An enrolled person present is *named correctly* when a cluster
of theirs carries their name, else *left unnamed*; `>=10 s` counts only those with at
least 10 s of clean speech (reference RTTM) in the file identified in.

Steps (each adds one rule to the one before; stages/identify.py IdentifyRules): baseline
(shipped cosine 0.451, centroid embeddings) -> +s-norm (threshold calibrated on the
LibriSpeech utterances, open-set 1 % FAR) -> +margin -> +clean-speech embedding ->
+min clean speech -> calibrated thresholds (the shipped rules). Diarizations are cached
under bench/results/ (`--fresh` redoes them).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

import json  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from bench._common import AUDIO, REPO, base_parser, md_table, write_json  # noqa: E402

AMI_GROUPS = [
    ["ami/trn00.flac", "ami/trn01.wav", "ami/trn03.flac"],
    ["ami/trn07.flac", "ami/trn08.flac"],
    ["ami/trn06.flac", "ami/trn09.flac"],
    ["ami/trn01.wav", "ami/trn02.flac"],
]
MEETING_4 = "mix/meeting_4spk.wav"
MEETING_10 = "mix/meeting_long_10spk.flac"
ENROLL_FROM_10 = ["1998", "3005", "367", "533", "1688"]  # 2 in the 4-speaker meeting
ENROLL_S = 20.0
AMI_ALL = "AMI, all enrolled"
# Today's shipped cosine threshold (LibriSpeech-calibrated), the baseline step.
BASELINE_COSINE = 0.451
RECALL_MIN_CLEAN_S = 10.0
CACHE = REPO / "bench" / "results" / "identify-cache.json"


@dataclass(frozen=True)
class Trial:
    condition: str
    enrolled_from: str
    target: str
    prints: dict[str, list[float]]  # person -> voiceprint
    refused: dict[str, str]  # person -> why enrollment refused them


def ref_turns(path: str) -> list[Any]:
    from core.artifacts import Turn

    rttm = (AUDIO / path).with_suffix(".rttm")
    return [
        Turn(start=float(p[3]), end=float(p[3]) + float(p[4]), speaker=p[7])
        for p in (ln.split() for ln in rttm.read_text().splitlines())
        if len(p) >= 8 and p[0] == "SPEAKER"
    ]


def clean_clip(audio: Any, turns: list[Any], speaker: str, cap_s: float | None = None) -> Any:
    from stages import voice

    spans = voice.clean_spans(turns, speaker)
    pieces, got = [], 0.0
    for s, e in spans:
        if cap_s is not None and got >= cap_s:
            break
        if cap_s is not None:
            e = min(e, s + cap_s - got)
        pieces.append(audio[int(s * 16000) : int(e * 16000)])
        got += e - s
    return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)


def clean_seconds(turns: list[Any], speaker: str) -> float:
    from stages import voice

    return sum(e - s for s, e in voice.clean_spans(turns, speaker))


def enroll(
    clips: dict[str, list[Any]], encoder: Any
) -> tuple[dict[str, list[float]], dict[str, str]]:
    from core.errors import BadInput
    from stages import voice

    prints, refused = {}, {}
    for person, c in clips.items():
        try:
            prints[person] = voice.enroll_voiceprint(c, encoder)
        except BadInput as exc:
            refused[person] = exc.message
    return prints, refused


def trials(audio: dict[str, Any], encoder: Any) -> list[Trial]:
    from bench.eval import read_enrollment
    from stages.calibration import _load

    out = []
    by_file: dict[str, tuple[dict[str, list[float]], dict[str, str]]] = {}
    for a in sorted({f for g in AMI_GROUPS for f in g}):
        turns = ref_turns(a)
        # everyone of `a` (the people no other file shares are distractors)
        clips = {p: [clean_clip(audio[a], turns, p)] for p in sorted({t.speaker for t in turns})}
        by_file[a] = enroll(clips, encoder)
    for group in AMI_GROUPS:
        for a in group:
            for b in group:
                if b != a:
                    out.append(Trial("AMI cross-file", a, b, *by_file[a]))
    # Everyone enrollable from the other files at once: more voiceprints to confuse.
    for b in sorted(by_file):
        gallery: dict[str, list[float]] = {}
        for a, (prints, _) in sorted(by_file.items()):
            if a != b:
                for person, emb in prints.items():
                    gallery.setdefault(person, emb)
        out.append(Trial(AMI_ALL, "every other AMI file", b, gallery, {}))
    four = sorted({t.speaker for t in ref_turns(MEETING_4)})
    for src, people, target in (
        (MEETING_4, four, MEETING_10),
        (MEETING_10, ENROLL_FROM_10, MEETING_4),
    ):
        turns = ref_turns(src)
        clips = {p: [clean_clip(audio[src], turns, p, ENROLL_S)] for p in people}
        prints, refused = enroll(clips, encoder)
        out.append(Trial("LibriSpeech mixes", src, target, prints, refused))
    tsv = read_enrollment(AUDIO / "mix" / "enrollment.tsv")
    first5 = {k: [_load(c) for c in v] for k, v in list(tsv.items())[:5]}
    prints, refused = enroll(first5, encoder)
    for target in (MEETING_4, MEETING_10):
        out.append(Trial("LibriSpeech mixes", "enrollment.tsv (5)", target, prints, refused))
    return out


def diarize_all(targets: list[str], audio: dict[str, Any], fresh: bool) -> dict[str, Any]:
    """target -> {"centroid": Diarization, "clean": Diarization}: the diarizer's output is
    JSON-cached, the clean-speech embeddings are made again each run (stages/voice.py)."""
    from core.artifacts import Diarization
    from core.events import no_progress
    from core.settings import Settings
    from stages import voice
    from stages.engines.models import ModelManager

    manager = ModelManager(Settings())
    key = manager.diarizer_id()
    cached: dict[str, Any] = {}
    if CACHE.exists() and not fresh:
        data = json.loads(CACHE.read_text())
        if data.get("diarizer") == key:
            cached = data["files"]
    out: dict[str, Any] = {}
    for t in targets:
        if t not in cached:
            print(f"  diarizing {t}", file=sys.stderr)
            d = manager.diarizer().diarize(
                audio[t], num_speakers=None, min_speakers=None, max_speakers=None,
                progress=no_progress,
            )  # fmt: skip
            cached[t] = {"centroid": d.model_dump()}
            CACHE.parent.mkdir(parents=True, exist_ok=True)
            CACHE.write_text(json.dumps({"diarizer": key, "files": cached}))
        centroid = Diarization.model_validate(cached[t]["centroid"])
        clean = voice.with_clean_embeddings(audio[t], centroid, manager.encoder())
        out[t] = {"centroid": centroid, "clean": clean}
    return out


def score_trial(trial: Trial, diarization: Any, ident: Any) -> dict[str, Any]:
    turns = ref_turns(trial.target)
    people = sorted({t.speaker for t in turns})
    enrolled = set(trial.prints)

    owner = owners(trial.target, diarization)
    named = {m.label: m.speaker_id for m in ident.matches if m.speaker_id}
    suggested = {m.label: m.suggestion.speaker_id for m in ident.matches if m.suggestion}
    correct, wrong, strangers_named = set(), set(), set()
    for label, name in named.items():
        who = owner.get(label)
        if name == who:
            correct.add(who)
        elif who in enrolled:
            wrong.add(who)
        else:
            strangers_named.add(who or f"(no one: {label})")
    present = [p for p in people if p in enrolled]
    strangers = [p for p in people if p not in enrolled]
    long = [p for p in present if clean_seconds(turns, p) >= RECALL_MIN_CLEAN_S]
    return {
        "present": present,
        "present_10s": long,
        "strangers": strangers,
        "correct": sorted(correct),
        "wrong": sorted(wrong),
        "strangers_named": sorted(strangers_named),
        "unnamed": [p for p in present if p not in correct],
        "suggestions_right": sum(owner.get(k) == v for k, v in suggested.items()),
        "suggestions_wrong": sum(owner.get(k) != v for k, v in suggested.items()),
    }


def totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    t = {
        k: 0
        for k in ("present", "correct", "present_10s", "correct_10s", "wrong", "strangers",
                  "strangers_named", "unnamed", "suggestions_right", "suggestions_wrong")
    }  # fmt: skip
    for r in rows:
        for k in ("present", "present_10s", "strangers", "correct", "wrong", "unnamed"):
            t[k] += len(r[k])
        t["strangers_named"] += len(r["strangers_named"])
        t["correct_10s"] += len(set(r["correct"]) & set(r["present_10s"]))
        t["suggestions_right"] += r["suggestions_right"]
        t["suggestions_wrong"] += r["suggestions_wrong"]
    return t


def evaluate(
    trs: list[Trial], diar: dict[str, Any], rules: Any, embedding: str, model: str
) -> list[dict[str, Any]]:
    from stages import identify

    out = []
    for tr in trs:
        d = diar[tr.target][embedding]
        if embedding == "centroid":  # no clean time known: the rule cannot apply
            d = d.model_copy(
                update={
                    "speakers": [s.model_copy(update={"clean_speech_s": None}) for s in d.speakers]
                }
            )
        prints = [
            identify.Voiceprint(id=p, name=p, embedding=e, model=model)
            for p, e in tr.prints.items()
        ]
        ident = identify.run(
            d, prints, threshold=rules.threshold, embedding_model=model, rules=rules
        )
        out.append({"trial": tr, **score_trial(tr, d, ident)})
    return out


def owners(target: str, diarization: Any) -> dict[str, str | None]:
    """Each cluster's reference speaker: the one it overlaps most (None: nobody)."""
    turns = ref_turns(target)
    out: dict[str, str | None] = {}
    for sp in diarization.speakers:
        ov = {
            p: sum(
                max(0.0, min(h.end, r.end) - max(h.start, r.start))
                for h in diarization.turns
                if h.speaker == sp.label
                for r in turns
                if r.speaker == p
            )
            for p in {t.speaker for t in turns}
        }
        best = max(ov, key=lambda p: ov[p]) if ov else None
        out[sp.label] = best if best is not None and ov[best] > 0 else None
    return out


def calibrate_on_meetings(
    trs: list[Trial],
    diar: dict[str, Any],
    rules: Any,
    librispeech_snorm: float,
    embedding: str = "clean",
) -> tuple[float, float, dict[str, Any]]:
    """Cosine and s-norm thresholds from every condition, open-set as bench.calibrate does:
    each cluster with at least `rules.min_clean_s` of clean speech scores a true match
    against its own speaker's voiceprint (when enrolled) and an impostor score, its best
    against everybody else's. Each threshold sits halfway between the highest impostor
    score and the next score above it (no impostor passes, whatever the margin does), and
    the s-norm one is at least the LibriSpeech open-set 1 % FAR value."""
    from stages.cohort import load_cohort, snorm
    from stages.engines.base import l2_normalise
    from stages.identify import choose_threshold

    true_cos: list[float] = []
    imp_cos: list[float] = []
    true_z: list[float] = []
    imp_z: list[float] = []
    for tr in trs:
        d = diar[tr.target][embedding]
        names = sorted(tr.prints)
        if not names:
            continue
        cohort = load_cohort(d.embedding_model)
        assert cohort is not None
        v = np.stack([np.asarray(tr.prints[n]) for n in names])
        own = owners(tr.target, d)
        for sp in d.speakers:
            if sp.embedding is None or (sp.clean_speech_s or 0.0) < rules.min_clean_s:
                continue
            c = l2_normalise(np.asarray(sp.embedding))[None]
            cos = (c @ v.T)[0]
            z = snorm(c @ v.T, c, v, cohort, rules.top_k)[0]
            who = own.get(sp.label)
            others = [k for k, n in enumerate(names) if n != who]
            if who in names:
                true_cos.append(float(cos[names.index(who)]))
                true_z.append(float(z[names.index(who)]))
            if others:
                imp_cos.append(float(cos[others].max()))
                imp_z.append(float(z[others].max()))
    cos_t, _, _ = choose_threshold(true_cos, imp_cos, 0.0)
    z_t, _, _ = choose_threshold(true_z, imp_z, 0.0)
    facts = {
        "true": len(true_cos),
        "impostors": len(imp_cos),
        "cosine": {"true_min": min(true_cos), "impostor_max": max(imp_cos)},
        "snorm": {"true_min": min(true_z), "impostor_max": max(imp_z)},
        "snorm_librispeech_1pct": librispeech_snorm,
    }
    return round(cos_t, 3), round(max(z_t, librispeech_snorm), 2), facts


def librispeech_snorm_threshold(encoder: Any, target_far: float = 0.01) -> float:
    """The open-set s-norm threshold at `target_far` on the LibriSpeech utterances
    (stages/calibration.py's protocol, scores s-normalised)."""
    from stages import calibration
    from stages.cohort import load_cohort, snorm
    from stages.identify import choose_threshold, enroll_embedding

    plan = calibration.plan_utterances(calibration.DEFAULT_AUDIO_DIR)
    cohort = load_cohort(encoder.model_id)
    assert cohort is not None, f"no cohort shipped for {encoder.model_id}"
    prints: dict[str, np.ndarray] = {
        c.speaker: np.asarray(enroll_embedding([calibration._load(u) for u in c.enroll], encoder))
        for c in plan
    }
    names = sorted(prints)
    v = np.stack([prints[n] for n in names])
    tests = [(c.speaker, encoder.embed(calibration._load(u))) for c in plan for u in c.tests]
    t = np.stack([e for _, e in tests])
    z = snorm(t @ v.T, t, v, cohort)
    same: list[float] = []
    best_wrong: list[float] = []
    for i, (spk, _) in enumerate(tests):
        j = names.index(spk)
        same.append(float(z[i, j]))
        best_wrong.append(float(np.max(np.delete(z[i], j))))
    threshold, _, _ = choose_threshold(same, best_wrong, target_far)
    return threshold


def main(argv: list[str] | None = None) -> int:
    p = base_parser("identify", __doc__.split("\n")[0])
    p.add_argument("--fresh", action="store_true", help="diarize again (ignore the cache)")
    args = p.parse_args(argv)

    from bench.diarize import decode
    from core.settings import Settings
    from stages import identify
    from stages.engines.models import ModelManager

    encoder = ModelManager(Settings()).encoder()
    model = encoder.model_id
    files = sorted({f for g in AMI_GROUPS for f in g} | {MEETING_4, MEETING_10})
    audio = {f: decode(AUDIO / f) for f in files}
    trs = trials(audio, encoder)
    diar = diarize_all(sorted({t.target for t in trs}), audio, args.fresh)
    snorm_t = librispeech_snorm_threshold(encoder)
    print(f"s-norm threshold on LibriSpeech (open-set, 1 % FAR): {snorm_t:.3f}", file=sys.stderr)

    base = identify.IdentifyRules(threshold=BASELINE_COSINE)
    shipped = identify.shipped_rules(identify.SHIPPED_THRESHOLDS.get(model, 0.6), model)
    snormed = replace(base, snorm_threshold=snorm_t)
    margined = replace(snormed, margin=shipped.margin)
    steps = [
        ("baseline (cosine 0.451)", base, "centroid"),
        ("+ s-norm", snormed, "centroid"),
        ("+ margin", margined, "centroid"),
        ("+ clean-speech embedding", margined, "clean"),
        ("+ min clean speech", replace(margined, min_clean_s=shipped.min_clean_s), "clean"),
        ("calibrated (shipped rules)", shipped, "clean"),
    ]
    rows, records = [], []
    for name, rules, emb in steps:
        results = evaluate(trs, diar, rules, emb, model)
        for cond in ("AMI cross-file", AMI_ALL, "LibriSpeech mixes"):
            t = totals([r for r in results if r["trial"].condition == cond])
            rows.append([
                name, cond,
                f"{t['correct']}/{t['present']}",
                f"{t['correct_10s']}/{t['present_10s']}",
                t["wrong"], f"{t['strangers_named']}/{t['strangers']}", t["unnamed"],
                f"{t['suggestions_right']} / {t['suggestions_wrong']}",
            ])  # fmt: skip
            records.append(
                {
                    "step": name,
                    "condition": cond,
                    "rules": rules.as_params(),
                    "threshold": rules.threshold,
                    **t,
                }
            )
    cos_t, z_t, facts = calibrate_on_meetings(trs, diar, shipped, snorm_t)
    print(
        f"calibrated on both conditions: cosine {cos_t} (shipped {shipped.threshold}),"
        f" s-norm {z_t} (shipped {shipped.snorm_threshold}); {json.dumps(facts)}",
        file=sys.stderr,
    )
    separation = []
    for label, emb, min_clean in (
        ("centroid embedding", "centroid", 0.0),
        ("clean-speech embedding", "clean", 0.0),
        (
            f"clean-speech embedding, >= {shipped.min_clean_s:g} s clean",
            "clean",
            shipped.min_clean_s,
        ),
    ):
        _, _, f = calibrate_on_meetings(
            trs, diar, replace(shipped, min_clean_s=min_clean), snorm_t, emb
        )
        separation.append([
            label, f"{f['true']} / {f['impostors']}",
            f"{f['cosine']['true_min']:.3f} / {f['cosine']['impostor_max']:.3f}",
            f"{f['snorm']['true_min']:.2f} / {f['snorm']['impostor_max']:.2f}",
        ])  # fmt: skip
    detail = []
    for r in evaluate(trs, diar, shipped, "clean", model):
        tr = r["trial"]
        detail.append([
            tr.condition, f"{tr.enrolled_from} -> {tr.target}", ", ".join(sorted(tr.prints)) or "–",
            ", ".join(f"{k}" for k in sorted(tr.refused)) or "–",
            ", ".join(r["correct"]) or "–", ", ".join(r["wrong"]) or "–",
            ", ".join(r["strangers_named"]) or "–", ", ".join(r["unnamed"]) or "–",
        ])  # fmt: skip
    table = md_table(
        ["step", "condition", "named correctly", "of those >= 10 s clean", "named wrongly",
         "strangers named", "left unnamed", "suggestions right / wrong"],
        rows,
    )  # fmt: skip
    per_trial = md_table(
        ["condition", "enrolled from -> identified in", "enrolled", "refused at enrollment",
         "named correctly", "named wrongly", "strangers named", "left unnamed"],
        detail,
    )  # fmt: skip
    sep_table = md_table(
        ["clusters scored (all conditions)", "true / stranger scores",
         "cosine: weakest true / strongest stranger", "s-norm: weakest true / strongest stranger"],
        separation,
    )  # fmt: skip
    table = table + "\n\n" + sep_table
    write_json(args.out, {"model": model, "snorm_threshold_librispeech": snorm_t, "steps": records,
                          "calibrated": {"cosine": cos_t, "snorm": z_t, **facts},
                          "markdown": table + "\n\n" + per_trial})  # fmt: skip
    print(table + "\n\n" + per_trial)
    return 0


if __name__ == "__main__":
    sys.exit(main())
