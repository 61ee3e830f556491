"""Whisper decoders side by side on the dev set: WER per language, CPU seconds, and the
4-speaker meeting merged with one diarization (word-speaker accuracy).

    python -m bench.transcribe [--variants sequential,chunked] [--batch-size 8]
        [--threads N] [--files SUBSTR,...] [--no-long] [--no-meeting]

Every variant is stages/engines/whisper.py's FasterWhisperTranscriber on the same Whisper
weights (int8, temperature 0, word timestamps, VAD). A variant is `NAME[:key=value,...]`:
`sequential` (batch 0: faster-whisper's 30 s windows, each conditioned on the previous
text, today's decoder before this bench made the chunked one the default) or `chunked`
(batch --batch-size: the VAD's speech cut into <= 30 s chunks, decoded a batch at a time,
the language found once); keys `batch`, `beam` (default 5) and `threads`. The first
variant is the baseline of every ratio; all run in this one process, one after the other
on each file, the order rotated from file to file.

Files: every manifest row with role `asr` and a transcript, pyannote's sample (it has an
STM), and per language with several clips a long-form file made of its clips with 1 s of
silence between (`long:en`, `long:fr`; a recording longer than a window, with its
reference), so that chunking and the language found once are scored too. WER is
bench/eval.py's (same normalisation), pooled per language. On mix/meeting_4spk.wav (no
reference transcript) each variant's words are merged (stages.merge) with the same
diarization (the windowed recipe's) and scored with bench/eval.py's word-speaker accuracy
against the RTTM; `vs first` is the word error rate of the variant's text against the
first variant's (how much the decoders disagree). `other load`: CPU seconds of every
other program per wall second (bench._common.CpuMeter).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from bench._common import AUDIO, CpuMeter, base_parser, md_table, write_json  # noqa: E402
from bench.diarize import decode  # noqa: E402
from bench.eval import (  # noqa: E402
    DEFAULT_MANIFEST,
    annotation,
    load_rttm,
    pyannote_sample,
    read_manifest,
    reference_text,
    wer_counts,
    word_speaker_accuracy,
)

GAP_S = 1.0  # silence between the clips of a long-form file


@dataclass(frozen=True)
class Variant:
    name: str
    batch: int
    beam: int
    threads: int


@dataclass
class Item:
    name: str
    language: str
    audio: np.ndarray
    ref: str


def parse_variants(spec: str, batch_size: int, threads: int) -> list[Variant]:
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, opts = part.partition(":")
        kv = dict(o.split("=", 1) for o in opts.split(";") if o) if opts else {}
        unknown = set(kv) - {"batch", "beam", "threads"}
        if name not in ("sequential", "chunked") or unknown:
            raise SystemExit(f"bad variant {part!r}: sequential|chunked[:batch=N;beam=N;threads=N]")
        default_batch = 0 if name == "sequential" else batch_size
        out.append(
            Variant(
                part,
                int(kv.get("batch", default_batch)),
                int(kv.get("beam", 5)),
                int(kv.get("threads", threads)),
            )
        )
    if not out:
        raise SystemExit("no variant")
    return out


def dev_items(files: list[str], long_form: bool) -> list[Item]:
    rows = [r for r in read_manifest(DEFAULT_MANIFEST) if r.role == "asr" and r.ref_text]
    if (sample := pyannote_sample()) is not None:
        rows.append(sample)
    items = [
        Item(
            r.name,
            r.language or "?",
            decode(r.path),
            reference_text(r.ref_text) if r.ref_text else "",
        )
        for r in rows
    ]
    if long_form:
        gap = np.zeros(int(GAP_S * 16000), dtype=np.float32)
        for lang in sorted({i.language for i in items}):
            clips = [i for i in items if i.language == lang]
            if len(clips) < 4:
                continue
            audio = np.concatenate([x for c in clips for x in (c.audio, gap)])
            ref = " ".join(c.ref for c in clips)
            items.append(Item(f"long:{lang}", f"{lang} (long)", audio, ref))
    if files:
        items = [i for i in items if any(f in i.name for f in files)]
    return items


def main(argv: list[str] | None = None) -> int:
    p = base_parser("transcribe", __doc__.split("\n")[0])
    p.add_argument("--variants", default="sequential,chunked", help="comma-separated; see above")
    p.add_argument("--batch-size", type=int, default=8, help="chunks per batch of `chunked`")
    p.add_argument(
        "--threads", type=int, default=0, help="CTranslate2 threads (0: as the worker: the cores)"
    )
    p.add_argument("--files", default="", help="only files whose name holds one of these")
    p.add_argument("--no-long", action="store_true", help="without the long-form files")
    p.add_argument("--no-meeting", action="store_true")
    p.add_argument("--meeting-only", action="store_true")
    args = p.parse_args(argv)

    from core.events import no_progress
    from core.settings import Settings
    from stages.engines.models import ModelManager
    from stages.engines.whisper import FasterWhisperTranscriber
    from stages.worker import cpu_threads

    settings = Settings()
    threads = args.threads or cpu_threads(settings, {})
    variants = parse_variants(args.variants, args.batch_size, threads)
    manager = ModelManager(settings)
    engines: dict[tuple[int, int], Any] = {}
    for v in variants:
        if (v.batch, v.threads) not in engines:
            engines[(v.batch, v.threads)] = FasterWhisperTranscriber(
                manager.asr_dir(), cpu_threads=v.threads, batch_size=v.batch
            )

    def run(v: Variant, audio: np.ndarray) -> tuple[Any, dict[str, float]]:
        with CpuMeter() as meter:
            c0, t0 = time.process_time(), time.perf_counter()
            out = engines[(v.batch, v.threads)].transcribe(
                audio, language=None, beam_size=v.beam, vad_filter=True, progress=no_progress
            )
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        return out, {"wall_s": wall, "cpu_s": cpu, "other_cores": meter.result["other_cores"]}

    report: dict[str, Any] = {
        "variants": [v.__dict__ for v in variants],
        "threads": threads,
    }
    tables: list[str] = []
    if not args.meeting_only:
        items = dev_items([f for f in args.files.split(",") if f], not args.no_long)
        tables.append(dev_set(items, variants, run, report))
    if not args.no_meeting:
        tables.append(meeting(variants, run, manager, report))
    report["markdown"] = "\n\n".join(tables)
    write_json(args.out, report)
    print(report["markdown"])
    return 0


def dev_set(items: list[Item], variants: list[Variant], run: Any, report: dict[str, Any]) -> str:
    per_lang: dict[tuple[str, str], list[float]] = {}
    files: list[dict[str, Any]] = []
    others: list[float] = []
    for n, item in enumerate(items):
        order = variants[n % len(variants) :] + variants[: n % len(variants)]
        rec: dict[str, Any] = {"file": item.name, "language": item.language}
        for v in order:
            out, cost = run(v, item.audio)
            text = " ".join(s.text for s in out.segments)
            errors, words = wer_counts(item.ref, text)
            rec[v.name] = {**cost, "errors": errors, "ref_words": words, "text": text}
            rec[v.name]["detected"] = out.language
            others.append(cost["other_cores"])
            acc = per_lang.setdefault((item.language, v.name), [0, 0, 0.0, 0.0])
            acc[0] += errors
            acc[1] += words
            acc[2] += cost["wall_s"]
            acc[3] += cost["cpu_s"]
        files.append(rec)
        scores = (f"{v.name} {rec[v.name]['errors']}/{rec[v.name]['ref_words']}" for v in order)
        print(f"  {item.name}: " + ", ".join(scores), file=sys.stderr)
    report["files"] = files
    base = variants[0].name
    headers = ["language", "files", "ref words", f"WER {base}"]
    for v in variants[1:]:
        headers += [f"WER {v.name}", "points"]
    headers += [f"CPU s {v.name}" for v in variants]
    headers += [f"CPU {v.name} / {base}" for v in variants[1:]]
    rows = []
    for lang in sorted({lang for lang, _ in per_lang}):
        b = per_lang[(lang, base)]
        wb = b[0] / max(b[1], 1)
        row = [lang, str(sum(1 for f in files if f["language"] == lang)), str(int(b[1]))]
        row.append(f"{100 * wb:.1f} %")
        for v in variants[1:]:
            s = per_lang[(lang, v.name)]
            ws = s[0] / max(s[1], 1)
            row += [f"{100 * ws:.1f} %", f"{100 * (ws - wb):+.1f}"]
        row += [f"{per_lang[(lang, v.name)][3]:.1f}" for v in variants]
        row += [f"{per_lang[(lang, v.name)][3] / max(b[3], 1e-9):.2f}" for v in variants[1:]]
        rows.append(row)
    report["per_language"] = {f"{k[0]}|{k[1]}": v for k, v in per_lang.items()}
    note = (
        f"\n\nother load during the dev set: mean {np.mean(others):.2f}, "
        f"max {np.max(others):.2f} cores"
    )
    return md_table(headers, rows) + note


def meeting(variants: list[Variant], run: Any, manager: Any, report: dict[str, Any]) -> str:
    from core.events import no_progress
    from stages import merge
    from stages.engines.windowed import WindowedDiarizer

    path = AUDIO / "mix" / "meeting_4spk.wav"
    audio = decode(path)
    ref = load_rttm(path.with_suffix(".rttm"))
    diar = WindowedDiarizer(manager.embedding_path(), manager.segmentation_path()).diarize(
        audio, num_speakers=None, min_speakers=None, max_speakers=None, progress=no_progress
    )
    hyp = annotation([(t.start, t.end, t.speaker) for t in diar.turns])
    rows, texts, costs = [], {}, {}
    for v in variants:
        out, cost = run(v, audio)
        merged = merge.run("bench", out.duration_s, out, diar, None, {})
        merged_words = [w.model_dump() for seg in merged.segments for w in seg.words]
        wsa = word_speaker_accuracy(ref, hyp, merged_words)
        texts[v.name] = " ".join(s.text for s in out.segments)
        costs[v.name] = cost
        base = variants[0].name
        errors, words = wer_counts(texts[base], texts[v.name])
        rows.append(
            [
                v.name,
                f"{cost['wall_s']:.1f}",
                f"{cost['cpu_s']:.1f}",
                f"{cost['cpu_s'] / costs[base]['cpu_s']:.2f}",
                f"{cost['wall_s'] / costs[base]['wall_s']:.2f}",
                str(len(merged_words)),
                f"{100 * wsa['accuracy']:.1f} % ({wsa['correct']}/{wsa['words']})",
                f"{100 * errors / max(words, 1):.1f} %",
                f"{cost['other_cores']:.2f}",
            ]
        )
    report["meeting"] = {"rows": rows, "texts": texts, "costs": costs}
    head = f"mix/meeting_4spk.wav ({len(audio) / 16000:.1f} s), merged with the same diarization\n"
    return head + md_table(
        [
            "decoder",
            "wall s",
            "CPU s",
            "CPU / first",
            "wall / first",
            "words",
            "word-speaker accuracy",
            "vs first",
            "other load",
        ],
        rows,
    )


if __name__ == "__main__":
    sys.exit(main())
