"""Queue: the orchestration ceiling — jobs per second through the whole chain (upload →
decode, diarize, transcribe, identify, merge tasks → job.succeeded over SSE) with the named
fake engines (`models.engine = "fake"`, stages/engines/fake.py). Decode stays real (ffmpeg on
a short WAV); diarize/transcribe/identify cost nothing, so what is left is the gateway, the
queue, the database, storage and the events.

Baseline in the same command: the same stage functions called directly in this process
(probe + decode + fake diarize + fake transcribe + identify + merge, no queue, no storage),
one job after another: the per-job cost of the work itself.

    .venv/bin/python -m bench.ceiling                      # 50 jobs, concurrency 4
    .venv/bin/python -m bench.ceiling --jobs 20 --concurrency 1
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench._common import (
    DEFAULT_AUDIO,
    base_parser,
    bench_settings,
    fmt,
    infra_note,
    md_table,
    pct,
    submit_and_follow,
    write_json,
)
from bench.overhead import make_copy, wait_worker_ready


def _ts(s: str) -> float:
    return dt.datetime.fromisoformat(s).timestamp()


def run_job(client: Any, path: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    job_id, last = submit_and_follow(client, path, "audio/wav")
    t1 = time.perf_counter()
    if last != "job.succeeded":
        raise RuntimeError(f"job {job_id} did not succeed: {last}")
    job = client.get(f"/v1/jobs/{job_id}").json()
    arts = client.get(f"/v1/jobs/{job_id}/artifacts").json()
    compute = sum(
        _ts(a["finished_at"]) - _ts(a["started_at"])
        for a in arts
        if a.get("started_at") and a.get("finished_at")
    )
    return {
        "job_id": job_id,
        "start": t0,
        "end": t1,
        "latency_s": t1 - t0,
        "stages_s": sum(s.get("elapsed_s") or 0.0 for s in job["stages"]),
        "compute_s": compute,
    }


def run_system(settings: Any, copies: list[Path], concurrency: int) -> dict[str, Any]:
    import httpx

    from cli.local import LocalSystem

    log_file = settings.data_dir / "worker.log"
    try:
        with LocalSystem(settings, worker_log=log_file) as system:
            ready = wait_worker_ready(system)
            limits = httpx.Limits(max_connections=2 * concurrency + 4)
            clients = [
                httpx.Client(base_url=system.url, timeout=httpx.Timeout(120.0), limits=limits)
                for _ in range(concurrency)
            ]
            try:
                run_job(clients[0], copies[0])  # warm-up: the worker's first task, imports
                t0 = time.perf_counter()
                with ThreadPoolExecutor(concurrency) as pool:
                    jobs = list(
                        pool.map(
                            lambda ip: run_job(clients[ip[0] % concurrency], ip[1]),
                            enumerate(copies[1:]),
                        )
                    )
                wall = time.perf_counter() - t0
            finally:
                for c in clients:
                    c.close()
    except BaseException:
        if log_file.exists():
            print(log_file.read_text()[-4000:], file=sys.stderr)
        raise
    return {"worker_ready_s": ready, "wall_s": wall, "jobs": jobs, "infra": infra_note(settings)}


def run_baseline(copies: list[Path]) -> list[float]:
    """The stage functions in one process: what one job costs without any orchestration."""
    from core.artifacts import ProvenanceEntry
    from stages import decode as decode_stage
    from stages import diarize as diarize_stage
    from stages import identify as identify_stage
    from stages import merge as merge_stage
    from stages import transcribe as transcribe_stage
    from stages.engines.fake import FakeEncoder, bench_diarizer, bench_transcriber

    diarizer, transcriber = bench_diarizer(), bench_transcriber()
    ffmpeg = decode_stage.find_ffmpeg()

    def nothing(*a: object) -> None:
        return None

    times = []
    for n, path in enumerate(copies):
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="scribe-bench-ceiling-") as tmp:
            wav = Path(tmp) / "audio.wav"
            _, num = decode_stage.decode_media(path, wav, ffmpeg_exe=ffmpeg)
            audio = decode_stage.load_wav(wav)
        d = diarize_stage.run(audio, diarize_stage.DiarizeParams(), diarizer, nothing)
        tr = transcribe_stage.run(
            audio,
            transcribe_stage.TranscribeParams(language=None, beam_size=5, vad_filter=True),
            transcriber,
            nothing,
        )
        ident = identify_stage.run(d, [], threshold=0.5, embedding_model=FakeEncoder.model_id)
        prov: dict[str, ProvenanceEntry] = {}
        merge_stage.run(f"job{n}", num / 16000, tr, d, ident, prov)
        times.append(time.perf_counter() - t0)
    return times[1:] if len(times) > 1 else times  # the first pays imports


def report(res: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    sysr, base = res["system"], res["baseline_s"]
    jobs = sysr["jobs"]
    lat = [j["latency_s"] for j in jobs]
    span = max(j["end"] for j in jobs) - min(j["start"] for j in jobs)
    jps = len(jobs) / span
    compute = sum(j["compute_s"] for j in jobs)
    stages = sum(j["stages_s"] for j in jobs)
    busy = sum(lat)
    b_med = statistics.median(base)
    summary = {
        "jobs": len(jobs),
        "concurrency": res["concurrency"],
        "jobs_per_s": jps,
        "latency_p50_s": pct(lat, 50),
        "latency_p99_s": pct(lat, 99),
        "outside_compute": 1 - compute / busy,
        "outside_stages": 1 - stages / busy,
        "baseline_job_s": b_med,
        "baseline_jobs_per_s": 1 / b_med,
        "overhead_per_job_s": pct(lat, 50) - b_med,
    }
    rows = [
        [
            f"system, {len(jobs)} jobs, concurrency {res['concurrency']}",
            jps,
            pct(lat, 50),
            pct(lat, 99),
            f"{summary['outside_compute'] * 100:.0f} %",
        ],
        [
            f"baseline, stage functions in one process ({len(base)} jobs)",
            1 / b_med,
            b_med,
            pct(base, 99),
            "0 %",
        ],
    ]
    lines = [
        f"Input: {res['audio_name']}, first {res['seconds']:g} s (WAV, decoded by ffmpeg "
        f"each job); engines: the named fakes. {sysr['infra']}.\n",
        md_table(
            ["run", "jobs/s", "latency p50 s", "latency p99 s", "outside stage compute"], rows
        ),
        f"\n`outside stage compute` = 1 − Σ(artifact finished_at − started_at) / Σ latency "
        f"(upload → job.succeeded seen); against the stages' DB elapsed_s it is "
        f"{summary['outside_stages'] * 100:.0f} %. Orchestration per job (system p50 − "
        f"baseline median): {fmt(summary['overhead_per_job_s'], 3)} s; system/baseline "
        f"throughput {fmt(jps * b_med, 3)}.",
    ]
    return "\n".join(lines), summary


def main(argv: list[str] | None = None) -> int:
    p = base_parser("ceiling", __doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=50)
    p.add_argument("--concurrency", type=int, default=4, help="clients submitting at once")
    p.add_argument("--audio", type=Path, default=DEFAULT_AUDIO, help="a WAV file")
    p.add_argument("--seconds", type=float, default=5.0, help="seconds of --audio per job")
    args = p.parse_args(argv)
    if args.quick:
        args.jobs = min(args.jobs, 10)
    work = Path(tempfile.mkdtemp(prefix="scribe-bench-ceiling-"))
    try:
        copies = [
            make_copy(args.audio, work / f"job{n}.wav", 10 * (n + 1), args.seconds)
            for n in range(args.jobs + 1)
        ]
        print("baseline ...", file=sys.stderr)
        base = run_baseline(copies[: min(len(copies), 21)])
        with bench_settings(
            "ceiling", embedded=args.embedded, keep=args.keep, models={"engine": "fake"}
        ) as settings:
            print(f"system ({infra_note(settings)}) ...", file=sys.stderr)
            system = run_system(settings, copies, args.concurrency)
        res = {
            "bench": "ceiling",
            "audio": str(args.audio),
            "audio_name": args.audio.name,
            "seconds": args.seconds,
            "concurrency": args.concurrency,
            "baseline_s": base,
            "system": system,
        }
        table, summary = report(res)
        print(table)
        res.update(summary=summary, table_md=table)
        print(f"\n(wrote {write_json(args.out, res)})", file=sys.stderr)
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
