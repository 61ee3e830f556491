"""The stage graph's parallelism: one recording through the whole system with one worker
process, then with two, in one command.

With two workers, diarize (and identify after it) and transcribe of one job may run at the
same time. The ideal end-to-end time is then the job's critical path, measured from the
one-worker run's own stage times:

    decode + max(diarize + identify, transcribe) + merge   (+ the system's fixed costs)

Each run starts its own LocalSystem (gateway thread + worker processes), waits for one warm
job (models loaded), then times the next job on a fresh copy of the file.

    .venv/bin/python -m bench.graph            # the 4-speaker meeting, whole
    .venv/bin/python -m bench.graph --quick    # its first 60 s

`--workers 1 --asr-batch-size 0,8` runs one worker with each Whisper decoder instead
(`SCRIBE_MODELS__ASR_BATCH_SIZE`: 0 the sequential one, > 0 the chunked one), the first
the baseline of the ratios, with the worker processes' CPU seconds (ffmpeg included) and
the other programs' load (`other load`, cores) during each timed job.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench._common import (
    DEFAULT_AUDIO,
    CpuMeter,
    base_parser,
    bench_settings,
    fmt,
    infra_note,
    machine,
    md_table,
    proc_tree_cpu,
    submit_and_follow,
    write_json,
)
from bench.overhead import audio_seconds, make_copy, worker_pids
from cli.local import LocalSystem
from core.graph import DEFAULT_GRAPH
from core.settings import ModelSettings


def _seconds(stage: dict[str, Any]) -> float:
    start = datetime.fromisoformat(stage["started_at"])
    end = datetime.fromisoformat(stage["finished_at"])
    return (end - start).total_seconds()


def run_with(
    workers: int, warm: Path, timed: Path, asr_batch_size: int | None = None
) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if asr_batch_size is not None:
        overrides["models"] = ModelSettings(asr_batch_size=asr_batch_size)
    with bench_settings(f"graph{workers}", **overrides) as settings:
        log = Path(settings.data_dir) / "worker.log"
        with LocalSystem(settings, workers=workers, worker_log=log) as system:
            with httpx.Client(base_url=system.url, timeout=60) as client:
                _, last = submit_and_follow(client, warm)
                if last != "job.succeeded":
                    raise RuntimeError(f"warm-up job ended with {last}; see {log}")
                pids = worker_pids(system)
                cpu0 = proc_tree_cpu(pids)
                with CpuMeter(lambda: pids) as meter:
                    t0 = time.perf_counter()
                    job_id, last = submit_and_follow(client, timed)
                    wall = time.perf_counter() - t0
                cpu = proc_tree_cpu(pids) - cpu0
                if last != "job.succeeded":
                    raise RuntimeError(f"timed job ended with {last}; see {log}")
                job = client.get(f"/v1/jobs/{job_id}").json()
            infra = infra_note(settings)
    # The result's stages; embed, after the result, may not have run yet.
    stages = {s["stage"]: _seconds(s) for s in job["stages"] if s["finished_at"]}
    d, t = job["stages"][1], job["stages"][2]
    overlap = d["started_at"] < t["finished_at"] and t["started_at"] < d["finished_at"]
    return {"workers": workers, "wall_s": wall, "stages": stages, "overlap": overlap,
            "infra": infra, "asr_batch_size": settings.models.asr_batch_size,
            "worker_cpu_s": cpu, "other_cores": meter.result["other_cores"]}  # fmt: skip


def critical_path(stages: dict[str, float]) -> float:
    """The longest chain of stage times through the graph, up to the result (the job is
    done then; stages after it, like embed, are not waited for)."""
    longest: dict[str, float] = {}
    for decl in (d for d in DEFAULT_GRAPH if d.result):
        longest[decl.name] = stages[decl.name] + max((longest[i] for i in decl.inputs), default=0.0)
    return max(longest.values())


def main(argv: list[str] | None = None) -> int:
    p = base_parser("graph", __doc__.split("\n\n")[0])
    p.add_argument("--audio", type=Path, default=DEFAULT_AUDIO)
    p.add_argument("--workers", default="1,2", help="worker processes: 1,2 or one of them")
    p.add_argument(
        "--asr-batch-size",
        default="",
        help="comma-separated SCRIBE_MODELS__ASR_BATCH_SIZE values, one run each (the "
        "first the baseline); default: the setting, with 1 and 2 workers compared",
    )
    args = p.parse_args(argv)
    max_s = 60.0 if args.quick else None
    work = Path(tempfile.mkdtemp(prefix="scribe-bench-graph-"))
    warm = make_copy(args.audio, work / f"warm{args.audio.suffix}", 5, max_s)
    seconds = audio_seconds(warm)
    worker_counts = [int(w) for w in args.workers.split(",") if w]
    if args.asr_batch_size:
        sizes = [int(b) for b in args.asr_batch_size.split(",") if b]
        return compare_decoders(args, warm, work, seconds, worker_counts, sizes, max_s)
    runs = []
    if worker_counts != [1, 2]:
        raise SystemExit("--workers other than 1,2 goes with --asr-batch-size")
    for n, workers in enumerate((1, 2)):
        timed = make_copy(args.audio, work / f"job{n}{args.audio.suffix}", 10 * (n + 1), max_s)
        print(f"{workers} worker(s) ...", file=sys.stderr)
        runs.append(run_with(workers, warm, timed))
    one, two = runs
    ideal = critical_path(one["stages"])
    serial = sum(one["stages"][name] for name in DEFAULT_GRAPH.result_stages)
    rows = [
        ["1 worker: end to end", fmt(one["wall_s"]), fmt(one["wall_s"] / seconds, 3)],
        ["2 workers: end to end", fmt(two["wall_s"]), fmt(two["wall_s"] / seconds, 3)],
        ["1 worker: sum of stage times", fmt(serial), ""],
        ["critical path (1-worker stage times)", fmt(ideal), fmt(ideal / seconds, 3)],
    ]
    stage_rows = [
        [name, fmt(one["stages"][name]), fmt(two["stages"][name])]
        for name in DEFAULT_GRAPH.result_stages
    ]
    print(f"audio: {args.audio.name}, {seconds:.1f} s; {one['infra']}\n")
    print(md_table(["", "s", "x real time"], rows))
    print(f"\n2 workers / 1 worker: {two['wall_s'] / one['wall_s']:.3f};"
          f" 2 workers / critical path: {two['wall_s'] / ideal:.3f};"
          f" diarize and transcribe overlapped: {two['overlap']}\n")  # fmt: skip
    print(md_table(["stage", "1 worker (s)", "2 workers (s)"], stage_rows))
    out = write_json(
        args.out,
        {
            "audio": str(args.audio),
            "audio_s": seconds,
            "runs": runs,
            "critical_path_s": ideal,
            "machine": machine(),
        },  # fmt: skip
    )
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


def compare_decoders(
    args: Any,
    warm: Path,
    work: Path,
    seconds: float,
    worker_counts: list[int],
    sizes: list[int],
    max_s: float | None,
) -> int:
    runs = []
    n = 0
    for workers in worker_counts:
        for size in sizes:
            n += 1
            timed = make_copy(args.audio, work / f"job{n}{args.audio.suffix}", 10 * n, max_s)
            print(f"{workers} worker(s), asr_batch_size {size} ...", file=sys.stderr)
            runs.append(run_with(workers, warm, timed, size))
    rows = []
    for r in runs:
        base = next(b for b in runs if b["workers"] == r["workers"])
        rows.append(
            [
                str(r["workers"]),
                str(r["asr_batch_size"]),
                fmt(r["wall_s"]),
                fmt(r["wall_s"] / seconds, 3),
                fmt(r["wall_s"] / base["wall_s"], 3),
                fmt(r["worker_cpu_s"]),
                fmt(r["worker_cpu_s"] / base["worker_cpu_s"], 3),
                fmt(r["stages"]["diarize"]),
                fmt(r["stages"]["transcribe"]),
                fmt(r["other_cores"]),
            ]
        )
    print(f"audio: {args.audio.name}, {seconds:.1f} s; {runs[0]['infra']}\n")
    print(
        md_table(
            [
                "workers",
                "asr batch",
                "end to end s",
                "x real time",
                "wall / first",
                "worker CPU s",
                "CPU / first",
                "diarize s",
                "transcribe s",
                "other load",
            ],
            rows,
        )
    )
    out = write_json(args.out, {"audio": str(args.audio), "audio_s": seconds, "runs": runs})
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
