"""Sequential vs batched faster-whisper on the dev set: WER per language, speed, and what
the batched word timings do to the merge.

    python -m bench.transcribe [--batch-size 8] [--threads 0] [--no-meeting]

Both transcribers are stages/engines/whisper.py's FasterWhisperTranscriber on the same
Whisper base weights (int8, beam 5, temperature 0, word timestamps, VAD): `sequential` is
today's call, `batched` passes batch_size (BatchedInferencePipeline). For every manifest
row with role `asr` (and pyannote's sample, which has an STM), both run one after the
other, alternating which goes first; WER is bench/eval.py's (same normalisation), pooled
per language. On mix/meeting_4spk.wav both transcripts are merged (stages.merge) with the
same diarization (the windowed recipe's) and scored with bench/eval.py's word-speaker
accuracy against the RTTM.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from bench._common import AUDIO, base_parser, md_table, write_json  # noqa: E402
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


def main(argv: list[str] | None = None) -> int:
    p = base_parser("transcribe", __doc__.split("\n")[0])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=0, help="CTranslate2 cpu_threads")
    p.add_argument("--no-meeting", action="store_true")
    args = p.parse_args(argv)

    from core.events import no_progress
    from core.settings import Settings
    from stages.engines.models import ModelManager
    from stages.engines.whisper import FasterWhisperTranscriber

    manager = ModelManager(Settings())
    engines = {
        "sequential": FasterWhisperTranscriber(manager.asr_dir(), cpu_threads=args.threads),
        "batched": FasterWhisperTranscriber(
            manager.asr_dir(), cpu_threads=args.threads, batch_size=args.batch_size
        ),
    }
    rows = [r for r in read_manifest(DEFAULT_MANIFEST) if r.role == "asr" and r.ref_text]
    if (sample := pyannote_sample()) is not None:
        rows.append(sample)

    def run(name: str, audio: Any) -> tuple[Any, float, float]:
        c0, t0 = time.process_time(), time.perf_counter()
        out = engines[name].transcribe(
            audio, language=None, beam_size=5, vad_filter=True, progress=no_progress
        )
        return out, time.perf_counter() - t0, time.process_time() - c0

    per_lang: dict[tuple[str, str], list[float]] = {}
    files: list[dict[str, Any]] = []
    for n, row in enumerate(rows):
        audio = decode(row.path)
        ref = reference_text(row.ref_text) if row.ref_text else ""
        order = ["sequential", "batched"] if n % 2 == 0 else ["batched", "sequential"]
        rec: dict[str, Any] = {"file": row.name, "language": row.language}
        for name in order:
            out, wall, cpu = run(name, audio)
            text = " ".join(s.text for s in out.segments)
            errors, words = wer_counts(ref, text)
            rec[name] = {
                "wall_s": wall,
                "cpu_s": cpu,
                "errors": errors,
                "ref_words": words,
                "text": text,
            }
            acc = per_lang.setdefault((row.language or "?", name), [0, 0, 0.0, 0.0])
            acc[0] += errors
            acc[1] += words
            acc[2] += wall
            acc[3] += cpu
        files.append(rec)
        print(
            f"  {row.name}: "
            + ", ".join(f"{k} {rec[k]['errors']}/{rec[k]['ref_words']}" for k in order),
            file=sys.stderr,
        )

    langs = sorted({lang for lang, _ in per_lang})
    rows_md = []
    for lang in langs:
        s, b = per_lang[(lang, "sequential")], per_lang[(lang, "batched")]
        ws, wb = s[0] / max(s[1], 1), b[0] / max(b[1], 1)
        rows_md.append(
            [
                lang,
                str(s[1]),
                f"{100 * ws:.1f} %",
                f"{100 * wb:.1f} %",
                f"{100 * (wb - ws):+.1f}",
                f"{s[3]:.1f}",
                f"{b[3]:.1f}",
                f"{b[2] / s[2]:.2f}",
            ]
        )
    table = md_table(
        [
            "language",
            "ref words",
            "WER sequential",
            "WER batched",
            "points",
            "CPU s seq",
            "CPU s batched",
            "wall batched/seq",
        ],
        rows_md,
    )
    report: dict[str, Any] = {"files": files, "batch_size": args.batch_size}

    if not args.no_meeting:
        from stages import merge
        from stages.engines.windowed import WindowedDiarizer

        path = AUDIO / "mix" / "meeting_4spk.wav"
        audio = decode(path)
        ref = load_rttm(path.with_suffix(".rttm"))
        diar = WindowedDiarizer(manager.embedding_path(), manager.segmentation_path()).diarize(
            audio, num_speakers=None, min_speakers=None, max_speakers=None, progress=no_progress
        )
        hyp = annotation([(t.start, t.end, t.speaker) for t in diar.turns])
        meet = []
        for name in ("sequential", "batched"):
            out, wall, cpu = run(name, audio)
            merged = merge.run("bench", out.duration_s, out, diar, None, {})
            merged_words = [w.model_dump() for seg in merged.segments for w in seg.words]
            wsa = word_speaker_accuracy(ref, hyp, merged_words)
            meet.append(
                [
                    name,
                    f"{wall:.1f}",
                    f"{cpu:.1f}",
                    str(len(merged_words)),
                    f"{100 * wsa['accuracy']:.1f} % ({wsa['correct']}/{wsa['words']})",
                ]
            )
        report["meeting"] = meet
        table += "\n\nmix/meeting_4spk.wav (219.7 s), merged with the same diarization\n"
        table += md_table(
            ["transcriber", "wall s", "CPU s", "words", "word-speaker accuracy"], meet
        )
    report["markdown"] = table
    write_json(args.out, report)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
