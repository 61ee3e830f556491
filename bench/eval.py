"""Accuracy of the real pipeline against the plain libraries, on the same files.

    python -m bench.eval --manifest tests/data/audio/manifest.tsv [--filter role=asr]
        [--limit N] [--quick] [--out bench/results/eval.json]

Two passes over the selected manifest rows:

1. **system**: a LocalSystem (gateway + worker, real PostgreSQL/Redis when they answer) is
   started; speakers are enrolled over HTTP, every file is uploaded as a job like a user
   would, and the result JSON and the diarize/identify artifacts are read back.
2. **direct**: faster-whisper alone (same weights, int8, beam 5, temperature 0,
   vad_filter=True, word timestamps) and the pyannote pipeline alone (the recipe of
   stages/engines/pyannote.py: segmentation-3.0 + CAM++, centroid AHC) on the same files.

Figures, per file and pooled:
- WER (word-level Levenshtein, pooled over files). Normalisation of both sides: Unicode
  lowercase, `[xx]` part markers removed, every character that is neither a letter, digit,
  apostrophe nor whitespace replaced by a space, whitespace collapsed. Apostrophes are kept.
- DER and JER (pyannote.metrics, collar 0 and 0.25 s, skip_overlap False) where the row has
  an RTTM; the system's figure is scored on its diarize artifact (the turns it found).
- word-speaker accuracy: share of the result's words whose speaker, mapped to the reference
  by the DER-optimal mapping, is the reference speaker at the word's midpoint (words in
  reference overlaps or outside every reference turn are not counted).
- identification on meetings of `mix/` (needs `mix/enrollment.tsv`): only a subset of the
  speakers is enrolled (`--enroll`, default the first five in enrollment.tsv), so
  top-1 accuracy is measured on the enrolled speakers present, and the false-accept rate on
  the others (a non-enrolled speaker that gets any name is a false accept).
- real-time factor: wall time / audio duration (system: upload to `job.succeeded`, and the
  sum of the stage times; a warm-up job on the first file loads the models first).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import os
import re
import sys
import time
import unicodedata
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._common import AUDIO, RESULTS, bench_settings, infra_note, md_table, write_json

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

DEFAULT_MANIFEST = AUDIO / "manifest.tsv"
DEFAULT_ENROLL = 5
SAMPLE = "pyannote-sample"


# ---------------------------------------------------------------- references


@dataclass
class Row:
    path: Path
    name: str
    duration_s: float
    language: str | None
    ref_text: Path | None
    ref_rttm: Path | None
    role: str
    fields: dict[str, str] = field(default_factory=dict)


def read_manifest(path: Path) -> list[Row]:
    base = path.parent
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if not r.get("path"):
                continue

            def ref(col: str, r: dict[str, str] = r) -> Path | None:
                return base / r[col] if r.get(col) else None

            rows.append(
                Row(
                    path=base / r["path"],
                    name=r["path"],
                    duration_s=float(r.get("duration_s") or 0.0),
                    language=(r.get("language") or None),
                    ref_text=ref("ref_text"),
                    ref_rttm=ref("ref_rttm"),
                    role=r.get("role", ""),
                    fields=dict(r),
                )
            )
    return rows


def pyannote_sample() -> Row | None:
    """pyannote.audio's own 30 s two-speaker sample (wav + rttm + stm), if installed."""
    import importlib.util

    spec = importlib.util.find_spec("pyannote.audio")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(next(iter(spec.submodule_search_locations))) / "sample"
    if not (d / "sample.wav").exists():
        return None
    return Row(
        d / "sample.wav",
        SAMPLE,
        30.0,
        "en",
        d / "sample.stm",
        d / "sample.rttm",
        "diarization",
        {"role": "diarization", "path": SAMPLE},
    )


def reference_text(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".stm":  # uri channel speaker start end text
        return " ".join(" ".join(ln.split()[5:]) for ln in text.splitlines() if ln.strip())
    return text


_PART = re.compile(r"^\s*\[[^\]]*\]\s*", re.M)


def normalise(text: str) -> list[str]:
    """Lowercase, drop `[xx]` markers, punctuation -> space (apostrophes kept), split."""
    text = _PART.sub(" ", unicodedata.normalize("NFC", text)).lower().replace("’", "'")
    kept = "".join(c if (c.isalnum() or c == "'" or c.isspace()) else " " for c in text)
    return [w.strip("'") for w in kept.split() if w.strip("'")]


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer_counts(ref_text: str, hyp_text: str) -> tuple[int, int]:
    ref, hyp = normalise(ref_text), normalise(hyp_text)
    return edit_distance(ref, hyp), len(ref)


def load_rttm(path: Path) -> Any:
    from pyannote.core import Annotation, Segment

    ann = Annotation(uri=path.stem)
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        p = line.split()
        if len(p) >= 8 and p[0] == "SPEAKER":
            start, dur = float(p[3]), float(p[4])
            ann[Segment(start, start + dur), i] = p[7]
    return ann


def annotation(turns: Iterable[tuple[float, float, str]]) -> Any:
    from pyannote.core import Annotation, Segment

    ann = Annotation()
    for i, (start, end, speaker) in enumerate(turns):
        if end > start:
            ann[Segment(start, end), i] = speaker
    return ann


def diarization_scores(ref: Any, hyp: Any) -> dict[str, float]:
    from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

    out: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "uem was approximated"
        for collar in (0.0, 0.25):
            tag = f"c{collar:g}"
            der = DiarizationErrorRate(collar=collar, skip_overlap=False)
            detail = der(ref, hyp, detailed=True)
            out[f"der_{tag}"] = float(detail["diarization error rate"])
            total = detail["total"] or 1.0
            out[f"confusion_{tag}"] = float(detail["confusion"]) / total
            out[f"missed_{tag}"] = float(detail["missed detection"]) / total
            out[f"false_alarm_{tag}"] = float(detail["false alarm"]) / total
            # pyannote.metrics leaves JaccardErrorRate.__init__ unannotated
            jer = JaccardErrorRate(collar=collar, skip_overlap=False)  # type: ignore[no-untyped-call]
            out[f"jer_{tag}"] = float(jer(ref, hyp))
    out["speakers_ref"] = len(ref.labels())
    out["speakers_hyp"] = len(hyp.labels())
    return out


def optimal_mapping(ref: Any, hyp: Any) -> dict[str, str]:
    from pyannote.metrics.diarization import DiarizationErrorRate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dict(DiarizationErrorRate().optimal_mapping(ref, hyp))


def word_speaker_accuracy(
    ref: Any, hyp_turns: Any, words: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Share of words whose speaker (mapped hyp -> ref) is the reference speaker at their
    midpoint; words in reference overlap or outside the reference are skipped."""
    from pyannote.core import Segment

    mapping = optimal_mapping(ref, hyp_turns)
    correct = counted = 0
    for w in words:
        mid = (float(w["start"]) + float(w["end"])) / 2
        here = {
            label
            for seg, _, label in ref.crop(
                Segment(mid - 1e-3, mid + 1e-3), mode="intersection"
            ).itertracks(yield_label=True)
        }
        if len(here) != 1:
            continue
        counted += 1
        correct += mapping.get(w["speaker"]) == next(iter(here))
    return {
        "words": counted,
        "correct": correct,
        "accuracy": correct / counted if counted else math.nan,
    }


def read_enrollment(path: Path) -> dict[str, list[Path]]:
    clips: dict[str, list[Path]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            clips.setdefault(r["speaker"], []).append(path.parent.parent / r["utterance"])
    return clips


def identification_scores(
    ref: Any, hyp_turns: Any, named: dict[str, str | None], enrolled: set[str]
) -> dict[str, Any]:
    """named: hyp label -> enrolled name (None: unnamed). Reference speakers map to the hyp
    cluster the DER mapping gives them (none: the speaker was lost by diarization)."""
    inverse = {r: h for h, r in optimal_mapping(ref, hyp_turns).items()}
    per: dict[str, Any] = {}
    top1 = n_enrolled = false_accepts = n_other = 0
    for speaker in sorted(ref.labels()):
        label = inverse.get(speaker)
        got = named.get(label) if label else None
        if speaker in enrolled:
            n_enrolled += 1
            top1 += got == speaker
        else:
            n_other += 1
            false_accepts += got is not None
        per[speaker] = {"enrolled": speaker in enrolled, "cluster": label, "named": got}
    return {
        "enrolled_present": n_enrolled,
        "top1_correct": top1,
        "top1": top1 / n_enrolled if n_enrolled else math.nan,
        "not_enrolled_present": n_other,
        "false_accepts": false_accepts,
        "false_accept_rate": false_accepts / n_other if n_other else math.nan,
        "speakers": per,
    }


# ---------------------------------------------------------------- the system, over HTTP


def run_system(
    rows: Sequence[Row], enroll: dict[str, list[Path]], args: argparse.Namespace
) -> dict[str, Any]:
    from cli.client import ScribeClient
    from cli.local import LocalSystem
    from core.artifacts import Diarization, Identification, Transcript
    from stages import merge
    from stages.merge import SMOOTH_TRY_S
    from storage.artifacts import ArtifactStore

    out: dict[str, Any] = {"files": {}}
    with bench_settings("eval", keep=args.keep) as settings:
        out["infra"] = infra_note(settings)
        log = settings.data_dir / "worker.log"
        with (
            LocalSystem(settings, worker_log=log) as system,
            ScribeClient(system.url, timeout=120) as client,
        ):
            store = ArtifactStore.from_settings(system.settings)
            if args.calibration is not None and args.calibration.exists():
                cal = json.loads(args.calibration.read_text())
                assert system.settings.database_url
                asyncio.run(_store_calibration(system.settings.database_url, cal))
                out["calibration"] = {k: cal[k] for k in ("model", "threshold", "far", "frr")}
            if enroll:
                for name, clips in enroll.items():
                    client.enroll(name, clips)
                out["enrolled"] = sorted(enroll)
            if rows and not args.no_warmup:  # the first job loads the models: not scored
                warm = client.submit(min(rows, key=lambda r: r.duration_s).path, {})
                _wait(client, warm["id"], args.job_timeout)
            for row in rows:
                t0 = time.perf_counter()
                job = client.submit(row.path, {})
                status = _wait(client, job["id"], args.job_timeout)
                wall = time.perf_counter() - t0
                info = client.job(job["id"])
                rec: dict[str, Any] = {
                    "status": status,
                    "wall_s": wall,
                    "duration_s": info.get("duration_s") or row.duration_s,
                }
                rec["stages_s"] = {s["stage"]: s.get("elapsed_s") for s in info["stages"]}
                rec["processing_s"] = sum(v or 0.0 for v in rec["stages_s"].values())
                if status != "succeeded":
                    rec["error"] = info.get("error")
                    out["files"][row.name] = rec
                    print(f"  system {row.name}: {status} {info.get('error')}", file=sys.stderr)
                    continue
                result = json.loads(client.result(job["id"]))
                rec["text"] = " ".join(s["text"] for s in result["segments"])
                rec["language"] = result.get("language")
                rec["words"] = [w for s in result["segments"] for w in s["words"]]
                rec["named"] = {s["id"]: s.get("name") for s in result["speakers"]}
                arts = {
                    a["stage"]: a for a in client.http.get(f"/v1/jobs/{job['id']}/artifacts").json()
                }
                if "diarize" in arts:
                    d = store.get_json(store.key_of(arts["diarize"]["uri"]), Diarization)
                    rec["turns"] = [(t.start, t.end, t.speaker) for t in d.turns]
                    if "transcribe" in arts:  # both merge rules on the same inputs
                        tr = store.get_json(store.key_of(arts["transcribe"]["uri"]), Transcript)
                        for rule, run_s in (("nearest", 0.0), ("smoothed", SMOOTH_TRY_S)):
                            m = merge.run(
                                job["id"], tr.duration_s, tr, d, None, {}, smooth_max_run_s=run_s
                            )
                            rec[f"words_{rule}"] = [
                                w.model_dump() for seg in m.segments for w in seg.words
                            ]
                if "identify" in arts:
                    ident = store.get_json(store.key_of(arts["identify"]["uri"]), Identification)
                    rec["identify_threshold"] = ident.threshold
                    rec["identify_scores"] = {m.label: m.score for m in ident.matches}
                out["files"][row.name] = rec
                print(f"  system {row.name}: {wall:.1f} s", file=sys.stderr)
    return out


async def _store_calibration(database_url: str, cal: dict[str, Any]) -> None:
    """Put a bench/calibrate.py result into the run's database, as `--store` would."""
    from bench.calibrate import store

    await store(database_url, cal["model"], cal)


def _wait(client: Any, job_id: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = str(client.job(job_id)["status"])
        if status in ("succeeded", "failed"):
            return status
        time.sleep(0.25)
    return "timeout"


# ---------------------------------------------------------------- the plain libraries


def run_direct(
    rows: Sequence[Row], enroll: dict[str, list[Path]], threshold: float
) -> dict[str, Any]:
    """faster-whisper and the pyannote recipe called directly, as docs/models.md shows."""
    import numpy as np
    import torch
    from faster_whisper import WhisperModel, decode_audio
    from scipy.optimize import linear_sum_assignment

    from core.settings import Settings
    from stages.engines.models import ModelManager
    from stages.engines.pyannote import CamppEmbedding, PyannoteDiarizer

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    manager = ModelManager(Settings())  # only for the packaged model paths
    asr = WhisperModel(str(manager.asr_dir()), device="cpu", compute_type="int8")
    diarizer = PyannoteDiarizer.from_recipe(manager.segmentation_path(), manager.embedding_path())
    campp = CamppEmbedding(manager.embedding_path())

    def unit(v: Any) -> Any:
        v = np.asarray(v, dtype=np.float64)
        return v / (np.linalg.norm(v) or 1.0)

    prints = {}
    for name, clips in enroll.items():
        embs = [
            unit(campp.embed(torch.from_numpy(decode_audio(str(c), sampling_rate=16000))))
            for c in clips
        ]
        prints[name] = unit(np.mean(embs, axis=0))

    out: dict[str, Any] = {"files": {}}
    for row in rows:
        audio = decode_audio(str(row.path), sampling_rate=16000)
        duration = len(audio) / 16000
        rec: dict[str, Any] = {"duration_s": duration}
        if row.ref_text is not None:
            t0 = time.perf_counter()
            segments, info = asr.transcribe(
                audio, beam_size=5, word_timestamps=True, temperature=0.0, vad_filter=True
            )
            segs = list(segments)
            rec["asr_wall_s"] = time.perf_counter() - t0
            rec["text"] = " ".join(s.text.strip() for s in segs)
            rec["language"] = info.language
        if row.ref_rttm is not None:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = diarizer.pipeline(
                    {"waveform": torch.from_numpy(audio)[None], "sample_rate": 16000}
                )
            rec["diar_wall_s"] = time.perf_counter() - t0
            ann = res.speaker_diarization
            rec["turns"] = [
                (s.start, s.end, str(lbl)) for s, _, lbl in ann.itertracks(yield_label=True)
            ]
            if prints:
                labels = [str(x) for x in ann.labels()]
                emb = np.asarray(res.speaker_embeddings, dtype=np.float64)
                named: dict[str, str | None] = {lbl: None for lbl in labels}
                ok = [
                    i
                    for i in range(len(labels))
                    if np.all(np.isfinite(emb[i])) and np.linalg.norm(emb[i]) > 0
                ]
                if ok:
                    names = list(prints)
                    c = np.stack([unit(emb[i]) for i in ok])
                    v = np.stack([prints[n] for n in names])
                    sim = c @ v.T
                    for r, k in zip(*linear_sum_assignment(sim, maximize=True), strict=True):
                        if sim[r, k] >= threshold:
                            named[labels[ok[r]]] = names[k]
                rec["named"] = named
        out["files"][row.name] = rec
        print(f"  direct {row.name}", file=sys.stderr)
    return out


# ---------------------------------------------------------------- scoring and report


def _gold(row: Row) -> bool:
    """A gold transcript (manifest ref_quality), not an upstream recogniser's output."""
    return row.name == SAMPLE or row.fields.get("ref_quality", "").startswith("gold")


def score(
    rows: Sequence[Row], system: dict[str, Any], direct: dict[str, Any], enrolled: set[str]
) -> dict[str, Any]:
    files: list[dict[str, Any]] = []
    pooled: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        pooled.setdefault(key, []).append(value)

    for row in rows:
        s = system["files"].get(row.name, {})
        d = direct["files"].get(row.name, {})
        f: dict[str, Any] = {
            "file": row.name,
            "duration_s": d.get("duration_s", row.duration_s),
            "status": s.get("status"),
        }
        if s.get("wall_s") is not None:
            f["rtf_system"] = s["wall_s"] / f["duration_s"]
            f["rtf_system_processing"] = s["processing_s"] / f["duration_s"]
        if row.ref_text is not None:
            ref = reference_text(row.ref_text)
            for who, rec in (("system", s), ("direct", d)):
                if "text" in rec:
                    errors, n = wer_counts(ref, rec["text"])
                    f[f"wer_{who}"] = errors / n if n else math.nan
                    add(f"wer_err_{who}", errors)
                    add(f"wer_n_{who}", n)
                    if _gold(row):
                        add(f"wer_gold_err_{who}", errors)
                        add(f"wer_gold_n_{who}", n)
            if "asr_wall_s" in d:
                f["rtf_direct_asr"] = d["asr_wall_s"] / f["duration_s"]
        if row.ref_rttm is not None:
            ref_ann = load_rttm(row.ref_rttm)
            for who, rec in (("system", s), ("direct", d)):
                if "turns" in rec:
                    hyp = annotation(rec["turns"])
                    for k, v in diarization_scores(ref_ann, hyp).items():
                        f[f"{k}_{who}"] = v
            if "diar_wall_s" in d:
                f["rtf_direct_diar"] = d["diar_wall_s"] / f["duration_s"]
            if "turns" in s and s.get("words"):
                f["word_speaker"] = word_speaker_accuracy(
                    ref_ann, annotation(s["turns"]), s["words"]
                )
                add("ws_correct", f["word_speaker"]["correct"])
                add("ws_words", f["word_speaker"]["words"])
                for rule in ("nearest", "smoothed"):
                    if s.get(f"words_{rule}"):
                        acc = word_speaker_accuracy(
                            ref_ann, annotation(s["turns"]), s[f"words_{rule}"]
                        )
                        f[f"word_speaker_{rule}"] = acc
                        add(f"ws_correct_{rule}", acc["correct"])
                        add(f"ws_words_{rule}", acc["words"])
            if enrolled and row.name.startswith("mix/"):
                for who, rec in (("system", s), ("direct", d)):
                    if "turns" in rec and "named" in rec:
                        ids = identification_scores(
                            ref_ann, annotation(rec["turns"]), rec["named"], enrolled
                        )
                        f[f"identification_{who}"] = ids
                        add(f"id_top1_{who}", ids["top1_correct"])
                        add(f"id_enrolled_{who}", ids["enrolled_present"])
                        add(f"id_fa_{who}", ids["false_accepts"])
                        add(f"id_other_{who}", ids["not_enrolled_present"])
        if "identify_threshold" in s:
            f["identify_threshold"] = s["identify_threshold"]
        files.append(f)

    def ratio(a: str, b: str) -> float:
        n = sum(pooled.get(b, []))
        return sum(pooled.get(a, [])) / n if n else math.nan

    overall = {
        "wer_system": ratio("wer_err_system", "wer_n_system"),
        "wer_direct": ratio("wer_err_direct", "wer_n_direct"),
        "ref_words": sum(pooled.get("wer_n_system", [])),
        "wer_gold_system": ratio("wer_gold_err_system", "wer_gold_n_system"),
        "wer_gold_direct": ratio("wer_gold_err_direct", "wer_gold_n_direct"),
        "ref_words_gold": sum(pooled.get("wer_gold_n_system", [])),
        "word_speaker_accuracy": ratio("ws_correct", "ws_words"),
        "word_speaker_nearest": ratio("ws_correct_nearest", "ws_words_nearest"),
        "word_speaker_smoothed": ratio("ws_correct_smoothed", "ws_words_smoothed"),
        "id_top1_system": ratio("id_top1_system", "id_enrolled_system"),
        "id_far_system": ratio("id_fa_system", "id_other_system"),
        "id_top1_direct": ratio("id_top1_direct", "id_enrolled_direct"),
        "id_far_direct": ratio("id_fa_direct", "id_other_direct"),
    }
    dur = sum(f["duration_s"] for f in files if "rtf_system" in f)
    if dur:
        overall["rtf_system"] = (
            sum(f["rtf_system"] * f["duration_s"] for f in files if "rtf_system" in f) / dur
        )
        overall["rtf_system_processing"] = (
            sum(f["rtf_system_processing"] * f["duration_s"] for f in files if "rtf_system" in f)
            / dur
        )
    return {"files": files, "overall": overall}


def pct(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{100 * v:.1f} %"


def num(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    files, o = report["files"], report["overall"]
    asr_rows = [
        [
            f["file"],
            f"{f['duration_s']:.1f}",
            pct(f.get("wer_system")),
            pct(f.get("wer_direct")),
            num(f.get("rtf_system"), 2),
            num(f.get("rtf_system_processing"), 2),
            num(f.get("rtf_direct_asr"), 2),
        ]
        for f in files
        if "wer_system" in f or "wer_direct" in f
    ]
    asr_rows.append(
        [
            f"**pooled, gold refs** ({o['ref_words_gold']} words)",
            "",
            pct(o["wer_gold_system"]),
            pct(o["wer_gold_direct"]),
            "",
            "",
            "",
        ]
    )
    asr_rows.append(
        [
            f"**pooled, all** ({o['ref_words']} ref words)",
            "",
            pct(o["wer_system"]),
            pct(o["wer_direct"]),
            num(o.get("rtf_system"), 2),
            num(o.get("rtf_system_processing"), 2),
            "",
        ]
    )
    parts = [
        "WER (normalised: lowercase, punctuation stripped, apostrophes kept, whitespace "
        "collapsed; pooled over files)",
        md_table(
            [
                "file",
                "s",
                "WER system",
                "WER direct",
                "RTF system (e2e)",
                "RTF system (stages)",
                "RTF direct ASR",
            ],
            asr_rows,
        ),
    ]
    dia = [f for f in files if "der_c0_system" in f or "der_c0_direct" in f]
    if dia:
        rows = []
        for f in dia:
            for who in ("system", "direct"):
                if f"der_c0_{who}" not in f:
                    continue
                rows.append(
                    [
                        f["file"],
                        who,
                        f"{f.get(f'speakers_ref_{who}')}/{f.get(f'speakers_hyp_{who}')}",
                        pct(f[f"der_c0_{who}"]),
                        pct(f[f"der_c0.25_{who}"]),
                        pct(f[f"jer_c0_{who}"]),
                        pct(f[f"jer_c0.25_{who}"]),
                        pct(f[f"confusion_c0.25_{who}"]),
                        pct(f["word_speaker"]["accuracy"])
                        if who == "system" and "word_speaker" in f
                        else "",
                        num(f.get("rtf_direct_diar"), 2) if who == "direct" else "",
                    ]
                )
        parts += [
            "",
            "Diarization (pyannote.metrics, skip_overlap False; collar in seconds)",
            md_table(
                [
                    "file",
                    "run",
                    "spk ref/hyp",
                    "DER c=0",
                    "DER c=0.25",
                    "JER c=0",
                    "JER c=0.25",
                    "confusion c=0.25",
                    "word-speaker acc",
                    "RTF direct diar",
                ],
                rows,
            ),
        ]
    ws = [f for f in files if "word_speaker_nearest" in f]
    if ws:
        rows = [
            [
                f["file"],
                str(f["word_speaker_nearest"]["words"]),
                pct(f["word_speaker_nearest"]["accuracy"]),
                pct(f["word_speaker_smoothed"]["accuracy"]),
            ]
            for f in ws
        ]
        rows.append(
            ["**pooled**", "", pct(o["word_speaker_nearest"]), pct(o["word_speaker_smoothed"])]
        )
        parts += [
            "",
            "Word-speaker accuracy of the merge rules on the same transcript and "
            "diarization (words scored at their midpoint against the RTTM)",
            md_table(["file", "words", "max overlap + nearest turn", "+ sentence smoothing"], rows),
        ]
    ids = [f for f in files if "identification_system" in f or "identification_direct" in f]
    if ids:
        rows = []
        for f in ids:
            for who in ("system", "direct"):
                r = f.get(f"identification_{who}")
                if r is None:
                    continue
                rows.append(
                    [
                        f["file"],
                        who,
                        f"{r['top1_correct']}/{r['enrolled_present']}",
                        f"{r['false_accepts']}/{r['not_enrolled_present']}",
                        num(f.get("identify_threshold"), 3),
                    ]
                )
        parts += [
            "",
            "Identification (enrolled subset: top-1 correct / enrolled present; "
            "false accepts / non-enrolled present)",
            md_table(["meeting", "run", "top-1", "false accepts", "threshold"], rows),
        ]
    return "\n".join(parts)


# ---------------------------------------------------------------- selection and main


def select(rows: list[Row], args: argparse.Namespace) -> list[Row]:
    for flt in args.filter:
        key, _, value = flt.partition("=")
        rows = [r for r in rows if r.fields.get(key) == value]
    if args.filter:
        pass
    elif args.quick:
        asr = [r for r in rows if r.role == "asr"][:3]
        meeting = [r for r in rows if r.name == "mix/meeting_4spk.wav"]
        rows = asr + meeting
    else:
        asr = [r for r in rows if r.role == "asr"]
        meeting = [r for r in rows if r.name == "mix/meeting_4spk.wav"]
        rows = asr + meeting
    if not args.filter and not args.no_sample and (sample := pyannote_sample()) is not None:
        rows.insert(
            len(rows) - 1 if rows and rows[-1].name.startswith("mix/") else len(rows), sample
        )
    if args.limit:
        rows = rows[: args.limit]
    return [r for r in rows if r.path.exists()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.eval", description=__doc__.split("\n")[0])
    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="keep rows whose manifest column equals VALUE (repeatable); "
        "replaces the default selection",
    )
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="3 ASR clips, sample.wav, meeting_4spk")
    p.add_argument("--no-sample", action="store_true", help="leave out pyannote's sample.wav")
    p.add_argument(
        "--no-warmup",
        action="store_true",
        help="no unscored warm-up job (the first file then pays the model loading)",
    )
    p.add_argument("--no-direct", action="store_true", help="skip the direct-library pass")
    p.add_argument(
        "--enroll",
        type=int,
        default=DEFAULT_ENROLL,
        help="enroll the first N speakers of mix/enrollment.tsv (0: none)",
    )
    p.add_argument(
        "--calibration",
        type=Path,
        default=RESULTS / "calibration.json",
        help="a bench/calibrate.py result to load into the system's database "
        "(identify then uses its threshold); ignored when missing",
    )
    p.add_argument("--job-timeout", type=float, default=900.0)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--out", type=Path, default=RESULTS / "eval.json")
    args = p.parse_args(argv)

    rows = select(read_manifest(args.manifest), args)
    if not rows:
        print("no manifest rows selected", file=sys.stderr)
        return 2
    enrollment = args.manifest.parent / "mix" / "enrollment.tsv"
    enroll: dict[str, list[Path]] = {}
    if args.enroll and enrollment.exists() and any(r.name.startswith("mix/") for r in rows):
        enroll = dict(list(read_enrollment(enrollment).items())[: args.enroll])
    print(
        f"{len(rows)} files, {sum(r.duration_s for r in rows):.0f} s of audio; "
        f"enrolling {sorted(enroll)}",
        file=sys.stderr,
    )

    t0 = time.perf_counter()
    system = run_system(rows, enroll, args)
    thresholds = [
        f["identify_threshold"] for f in system["files"].values() if "identify_threshold" in f
    ]
    threshold = thresholds[0] if thresholds else 0.6
    direct: dict[str, Any] = {"files": {}}
    if not args.no_direct:
        with contextlib.redirect_stdout(sys.stderr):
            direct = run_direct(rows, enroll, threshold)
    report = score(rows, system, direct, set(enroll))
    report["wall_s"] = time.perf_counter() - t0
    report["infra"] = system.get("infra")
    report["enrolled"] = sorted(enroll)
    report["threshold"] = threshold
    table = markdown(report)
    report["markdown"] = table
    report["raw"] = {
        "system": {
            k: {kk: vv for kk, vv in v.items() if not kk.startswith("words")}
            for k, v in system["files"].items()
        },
        "direct": direct["files"],
    }
    write_json(args.out, report)
    print(table)
    print(f"\n({len(rows)} files, {report['wall_s']:.0f} s; {report['infra']}; JSON: {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
