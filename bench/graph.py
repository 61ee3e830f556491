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
    base_parser,
    bench_settings,
    fmt,
    infra_note,
    machine,
    md_table,
    submit_and_follow,
    write_json,
)
from bench.overhead import audio_seconds, make_copy
from cli.local import LocalSystem
from core.graph import DEFAULT_GRAPH


def _seconds(stage: dict[str, Any]) -> float:
    start = datetime.fromisoformat(stage["started_at"])
    end = datetime.fromisoformat(stage["finished_at"])
    return (end - start).total_seconds()


def run_with(workers: int, warm: Path, timed: Path) -> dict[str, Any]:
    with bench_settings(f"graph{workers}") as settings:
        log = Path(settings.data_dir) / "worker.log"
        with LocalSystem(settings, workers=workers, worker_log=log) as system:
            with httpx.Client(base_url=system.url, timeout=60) as client:
                _, last = submit_and_follow(client, warm)
                if last != "job.succeeded":
                    raise RuntimeError(f"warm-up job ended with {last}; see {log}")
                t0 = time.perf_counter()
                job_id, last = submit_and_follow(client, timed)
                wall = time.perf_counter() - t0
                if last != "job.succeeded":
                    raise RuntimeError(f"timed job ended with {last}; see {log}")
                job = client.get(f"/v1/jobs/{job_id}").json()
            infra = infra_note(settings)
    # The result's stages; embed, after the result, may not have run yet.
    stages = {s["stage"]: _seconds(s) for s in job["stages"] if s["finished_at"]}
    d, t = job["stages"][1], job["stages"][2]
    overlap = d["started_at"] < t["finished_at"] and t["started_at"] < d["finished_at"]
    return {"workers": workers, "wall_s": wall, "stages": stages, "overlap": overlap,
            "infra": infra}  # fmt: skip


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
    args = p.parse_args(argv)
    max_s = 60.0 if args.quick else None
    work = Path(tempfile.mkdtemp(prefix="scribe-bench-graph-"))
    warm = make_copy(args.audio, work / f"warm{args.audio.suffix}", 5, max_s)
    seconds = audio_seconds(warm)
    runs = []
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


if __name__ == "__main__":
    raise SystemExit(main())
