"""Diarization recipes side by side: speed and DER on every file with an RTTM.

    python -m bench.diarize [--recipes pyannote,windowed] [--files all|meetings|short]
        [--repeat 1] [--threads 2] [--out bench/results/diarize.json]

Each recipe is one engine of stages/engines behind the `Diarizer` protocol, loaded once in
this process. For every file (the two mix/ meetings, the ten AMI excerpts, pyannote's
sample), the recipes run one after the other, in an order that alternates from file to
file, so that a noisy neighbour slows them alike; the ratios to the first recipe (the
baseline) are the figures to read. DER and JER come from bench/eval.py's scoring
(pyannote.metrics, collar 0 and 0.25 s, skip_overlap False) on the engine's `turns`.

Recipes:
- `auto`: what the worker runs with the default settings (stages/engines/auto.py);
- `pyannote`: segmentation-3.0 + CAM++ in pyannote's pipeline (the production recipe
  with the packaged models; `pyannote-step05` is the same with a 0.5 segmentation step;
  `pyannote-fbank1` computes each chunk's fbank once for all its speakers);
- `windowed`: segmentation-3.0 VAD -> 1.5 s CAM++ windows -> spectral clustering
  (stages/engines/windowed.py); options joined by `_` after the dash change it:
  `s0.6` window shift, `w` window length, `g` same-speaker gap filled, `v` VAD threshold,
  `t` segmentation step, `k` count-floor seconds (0: none), `silero`, `reseg`
  (overlap-aware turns), `ahc<below>x<threshold>`; e.g. `windowed-reseg_t2.5_g0.2`.
CPU seconds of the process are recorded beside the wall time (they depend less on how
busy the machine is); `other load` is what every other program used, in cores.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the worker does
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from bench._common import AUDIO, CpuMeter, base_parser, md_table, write_json  # noqa: E402
from bench.eval import annotation, diarization_scores, load_rttm, pyannote_sample  # noqa: E402

MEETINGS = ["mix/meeting_4spk.wav", "mix/meeting_long_10spk.flac"]
AMI = [f"ami/trn{i:02d}.flac" for i in range(10)]


def files(which: str) -> list[tuple[str, Path, Path]]:
    out: list[tuple[str, Path, Path]] = []
    names = {"meetings": MEETINGS, "short": AMI, "all": MEETINGS + AMI}.get(which)
    if names is None:  # a comma-separated list of manifest paths
        names = which.split(",")
    for name in names:
        if name == "pyannote-sample":
            continue  # added at the end when asked for
        path = AUDIO / name
        if name == "ami/trn01.flac":
            path = AUDIO / "ami" / "trn01.wav"
        rttm = path.with_suffix(".rttm")
        if path.exists() and rttm.exists():
            out.append((name, path, rttm))
    wanted = which in ("all", "short") or "pyannote-sample" in names
    if wanted and (sample := pyannote_sample()) is not None:
        assert sample.ref_rttm is not None
        out.append(("pyannote-sample", sample.path, sample.ref_rttm))
    return out


def build(recipe: str) -> Any:
    from core.settings import Settings
    from stages.engines.clustering import SpectralOptions
    from stages.engines.models import ModelManager
    from stages.engines.pyannote import PyannoteDiarizer
    from stages.engines.windowed import WindowedDiarizer, WindowedOptions

    manager = ModelManager(Settings())  # only for the packaged model paths
    if recipe == "auto":  # the product's default: what the worker runs
        return manager.diarizer()
    name, _, variant = recipe.partition("-")
    if name == "pyannote":
        step = 0.5 if "step05" in variant else 0.1
        engine = PyannoteDiarizer.from_recipe(
            manager.segmentation_path(), manager.embedding_path(), segmentation_step=step
        )
        if "fbank1" in variant:  # one fbank per chunk, shared by its speakers
            engine.pipeline._embedding = _shared_chunk_fbank(manager.embedding_path())
        return engine
    if name == "windowed":
        kw: dict[str, Any] = {}
        ckw: dict[str, Any] = {}
        for part in filter(None, variant.split("_")):
            if part == "silero":
                kw["vad"] = "silero"
                continue
            if part == "reseg":  # overlap-aware turns from segmentation-3.0's local speakers
                kw["resegment"] = True
                continue
            if part.startswith("ahc"):  # ahc<below>x<threshold>, e.g. ahc100x0.5
                below, _, thr = part[3:].partition("x")
                ckw["ahc_below"] = int(below)
                if thr:
                    ckw["ahc_threshold"] = float(thr)
                continue
            key, value = part[0], float(part[1:])
            kw[
                {
                    "s": "shift_s",
                    "w": "window_s",
                    "g": "fill_gap_s",
                    "v": "vad_threshold",
                    "t": "vad_step_s",
                    "k": "count_floor_s",
                }[key]
            ] = value
        return WindowedDiarizer(
            manager.embedding_path(),
            manager.segmentation_path(),
            options=WindowedOptions(**kw),
            clustering=SpectralOptions(**ckw),
        )
    raise SystemExit(f"unknown recipe {recipe!r}")


def _shared_chunk_fbank(checkpoint: Path) -> Any:
    """CamppEmbedding computing each chunk's fbank once for all its local speakers (a
    speaker's frames are those whose centre falls where its mask is on), instead of once per
    speaker on the masked samples. Measured and not adopted: fbank is ~1 % of the time."""
    import numpy as np
    import torch
    import torchaudio.compliance.kaldi as kaldi

    from stages.engines.pyannote import CamppEmbedding

    class SharedChunkFbank(CamppEmbedding):
        _last: Any = None

        def __call__(self, waveforms: Any, masks: Any = None) -> Any:
            out = np.full((len(waveforms), self.dimension), np.nan, dtype=np.float32)
            min_frames = (self.min_num_samples - 400) // 160 + 1
            for i, w in enumerate(waveforms[:, 0]):
                if self._last is not None and torch.equal(self._last[0], w):
                    feats = self._last[1]
                else:
                    with torch.inference_mode():
                        feats = kaldi.fbank(
                            w[None], num_mel_bins=80, sample_frequency=16000, dither=0.0
                        )
                    self._last = (w.clone(), feats)
                if masks is not None:
                    m = masks[i]
                    centres = (torch.arange(feats.shape[0]) * 160 + 200) * m.shape[0] // len(w)
                    feats = feats[m[centres.clamp(max=m.shape[0] - 1)] > 0.5]
                if feats.shape[0] >= min_frames:
                    with torch.inference_mode():
                        y = self.model((feats - feats.mean(0, keepdim=True))[None])
                    out[i] = y[0].numpy()
            return out

    return SharedChunkFbank(checkpoint)


def tile(audio: Any, ref: Any, seconds: float) -> tuple[Any, Any]:
    """The recording played again and again to `seconds` (same speakers throughout)."""
    import numpy as np
    from pyannote.core import Annotation, Segment

    one = len(audio) / 16000
    copies = max(1, int(np.ceil(seconds / one)))
    out = Annotation(uri=ref.uri)
    for k in range(copies):
        for seg, track, label in ref.itertracks(yield_label=True):
            out[Segment(seg.start + k * one, seg.end + k * one), (k, track)] = label
    tiled = np.tile(audio, copies)[: int(seconds * 16000)]
    return tiled, out.crop(Segment(0, seconds))


def decode(path: Path) -> Any:
    from faster_whisper import decode_audio

    return decode_audio(str(path), sampling_rate=16000)


def run_one(engine: Any, audio: Any) -> tuple[Any, dict[str, float]]:
    from core.events import no_progress

    with CpuMeter() as meter:
        c0 = time.process_time()
        t0 = time.perf_counter()
        out = engine.diarize(
            audio, num_speakers=None, min_speakers=None, max_speakers=None, progress=no_progress
        )
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
    return out, {"wall_s": wall, "cpu_s": cpu, "other_cores": meter.result["other_cores"]}


def main(argv: list[str] | None = None) -> int:
    p = base_parser("diarize", __doc__.split("\n")[0])
    p.add_argument(
        "--recipes", default="pyannote,windowed", help="comma-separated; the first is the baseline"
    )
    p.add_argument("--files", default="all", help="all, meetings, short, or manifest paths")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    p.add_argument("--max-s", type=float, default=0.0, help="only the first N s of each file")
    p.add_argument(
        "--tile-s",
        type=float,
        default=0.0,
        help="repeat each file (and its reference) to N s: time and memory on long input",
    )
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    recipes = args.recipes.split(",")
    engines = {}
    load_s = {}
    for r in recipes:
        t0 = time.perf_counter()
        engines[r] = build(r)
        load_s[r] = time.perf_counter() - t0
    warm = decode(AUDIO / "mix" / "meeting_4spk.wav")[: 16000 * 10]
    for r in recipes:  # first call pays lazy imports and allocator warm-up
        run_one(engines[r], warm)

    selected = files("short" if args.quick else args.files)
    results: list[dict[str, Any]] = []
    for n, (name, path, rttm) in enumerate(selected):
        audio = decode(path)
        ref = load_rttm(rttm)
        if args.tile_s:
            audio, ref = tile(audio, ref, args.tile_s)
            name = f"{name} x{len(audio) / 16000 / 60:.0f} min"
        if args.max_s:
            from pyannote.core import Segment

            audio = audio[: int(args.max_s * 16000)]
            ref = ref.crop(Segment(0, args.max_s))
            name = f"{name} [:{args.max_s:g} s]"
        order = recipes if n % 2 == 0 else list(reversed(recipes))
        for _ in range(args.repeat):
            for r in order:
                out, timing = run_one(engines[r], audio)
                hyp = annotation([(t.start, t.end, t.speaker) for t in out.turns])
                scores = diarization_scores(ref, hyp)
                results.append(
                    {
                        "file": name,
                        "recipe": r,
                        "duration_s": len(audio) / 16000,
                        **timing,
                        **scores,
                    }
                )
                print(
                    f"  {name} {r}: {timing['wall_s']:.1f} s, "
                    f"DER {100 * scores['der_c0.25']:.1f} %",
                    file=sys.stderr,
                )

    report = summarise(results, recipes)
    report["load_s"] = load_s
    report["threads"] = torch.get_num_threads()
    report["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report["results"] = results
    write_json(args.out, report)
    print(report["markdown"])
    return 0


def summarise(results: list[dict[str, Any]], recipes: list[str]) -> dict[str, Any]:
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for res in results:
        by.setdefault((res["file"], res["recipe"]), []).append(res)
    names = list(dict.fromkeys(r["file"] for r in results))
    base = recipes[0]
    rows = []
    totals: dict[str, dict[str, float]] = {
        r: {"wall": 0.0, "cpu": 0.0, "dur": 0.0} for r in recipes
    }
    for name in names:
        b = by.get((name, base), [])
        b_wall = sum(x["wall_s"] for x in b) / len(b) if b else float("nan")
        for r in recipes:
            xs = by.get((name, r), [])
            if not xs:
                continue
            wall = sum(x["wall_s"] for x in xs) / len(xs)
            cpu = sum(x["cpu_s"] for x in xs) / len(xs)
            x = xs[-1]
            totals[r]["wall"] += wall
            totals[r]["cpu"] += cpu
            totals[r]["dur"] += x["duration_s"]
            rows.append(
                [
                    name,
                    r,
                    f"{x['speakers_ref']}/{x['speakers_hyp']}",
                    f"{100 * x['der_c0.25']:.1f} %",
                    f"{100 * x['der_c0']:.1f} %",
                    f"{100 * x['confusion_c0.25']:.1f} %",
                    f"{wall:.2f}",
                    f"{wall / x['duration_s']:.3f}",
                    f"{wall / b_wall:.2f}",
                    f"{cpu:.1f}",
                    f"{sum(y['other_cores'] for y in xs) / len(xs):.2f}",
                ]
            )
    table = md_table(
        [
            "file",
            "recipe",
            "spk ref/hyp",
            "DER c=0.25",
            "DER c=0",
            "confusion",
            "wall s",
            "RTF",
            f"wall / {base}",
            "CPU s",
            "other load",
        ],
        rows,
    )
    total_rows = [
        [
            r,
            f"{t['wall']:.1f}",
            f"{t['wall'] / t['dur']:.3f}" if t["dur"] else "–",
            f"{t['wall'] / totals[base]['wall']:.2f}" if totals[base]["wall"] else "–",
            f"{t['cpu']:.1f}",
        ]
        for r, t in totals.items()
    ]
    total = md_table(["recipe", "wall s (all files)", "RTF", f"wall / {base}", "CPU s"], total_rows)
    return {"markdown": table + "\n\n" + total}


if __name__ == "__main__":
    sys.exit(main())
