"""Long file: the 726.5 s, 10-speaker meeting through the whole system — wall time, real-time
factor per stage, the worker's peak RSS, DER against the reference RTTM — then `--jobs N`
consecutive short jobs to compare the worker's RSS after the first with after the Nth.

Baseline in the same command (after the system, in this process): decode + the pyannote
recipe + faster-whisper called directly (bench/overhead.py's Baseline) on the same file.

    .venv/bin/python -m bench.long --jobs 10      # ~6-8 min on 2 cores
    .venv/bin/python -m bench.long --quick        # 2 short jobs, no baseline
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench._common import (
    AUDIO,
    DEFAULT_AUDIO,
    base_parser,
    bench_settings,
    fmt,
    infra_note,
    md_table,
    submit_and_follow,
    write_json,
)
from bench.overhead import (
    STAGES,
    Baseline,
    assemble_whisper,
    audio_seconds,
    make_copy,
    wait_worker_ready,
    worker_pids,
)

LONG = AUDIO / "mix" / "meeting_long_10spk.flac"
LONG_RTTM = AUDIO / "mix" / "meeting_long_10spk.rttm"


def proc_mem_kib(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmHWM:", "VmRSS:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0])
    return out


class RssPoller:
    """Polls VmRSS/VmHWM of the worker's processes; `peak_kib` is the largest VmHWM (the
    kernel's own high-water mark, so nothing between polls is missed) of any one of them."""

    def __init__(self, system: Any, every_s: float = 0.2) -> None:
        self.system, self.every_s = system, every_s
        self.peak_kib: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-poller")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every_s)

    def sample(self) -> dict[int, dict[str, int]]:
        now = {pid: proc_mem_kib(pid) for pid in worker_pids(self.system)}
        for pid, m in now.items():
            if "VmHWM" in m:
                self.peak_kib[pid] = max(self.peak_kib.get(pid, 0), m["VmHWM"])
        return now

    def rss_kib(self) -> int:
        """VmRSS of the largest worker process now (the one that holds the models)."""
        return max((m.get("VmRSS", 0) for m in self.sample().values()), default=0)

    def __enter__(self) -> RssPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def run_job(client: Any, path: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    job_id, last = submit_and_follow(client, path)
    wall = time.perf_counter() - t0
    job = client.get(f"/v1/jobs/{job_id}").json()
    if last != "job.succeeded":
        raise RuntimeError(f"job {job_id} failed: {job.get('error')}")
    return {
        "job_id": job_id,
        "wall_s": wall,
        "duration_s": job.get("duration_s"),
        "stages_s": {s["stage"]: s.get("elapsed_s") for s in job["stages"]},
    }


def der_of(system: Any, client: Any, job_id: str, rttm: Path) -> dict[str, float]:
    from bench.eval import annotation, diarization_scores, load_rttm
    from core.artifacts import Diarization
    from storage.artifacts import ArtifactStore

    store = ArtifactStore.from_settings(system.settings)
    arts = {a["stage"]: a for a in client.get(f"/v1/jobs/{job_id}/artifacts").json()}
    d = store.get_json(store.key_of(arts["diarize"]["uri"]), Diarization)
    scores = diarization_scores(
        load_rttm(rttm), annotation((t.start, t.end, t.speaker) for t in d.turns)
    )
    return scores


def run_system(
    settings: Any,
    long_copy: Path,
    cold: Path,
    shorts: list[Path],
    rttm: Path | None,
    log_file: Path,
) -> dict[str, Any]:
    import httpx

    from cli.local import LocalSystem

    out: dict[str, Any] = {"short_jobs": []}
    with LocalSystem(settings, worker_log=log_file) as system:
        out["worker_ready_s"] = wait_worker_ready(system)
        out["infra"] = infra_note(settings)
        with (
            RssPoller(system) as poller,
            httpx.Client(base_url=system.url, timeout=httpx.Timeout(120.0)) as client,
        ):
            out["rss_idle_kib"] = poller.rss_kib()
            # Model residency: a short job on the fresh worker (it loads the models), then the
            # same length again with the models resident.
            print("system: cold short job, warm short job ...", file=sys.stderr)
            out["cold_short"] = run_job(client, cold)
            out["warm_short"] = run_job(client, shorts[0]) if shorts else None
            out["rss_after_cold_kib"] = poller.rss_kib()
            print("system: long file ...", file=sys.stderr)
            out["long"] = run_job(client, long_copy)
            out["rss_after_long_kib"] = poller.rss_kib()
            out["peak_after_long_kib"] = max(poller.peak_kib.values(), default=0)
            print(f"  {out['long']['wall_s']:.1f} s", file=sys.stderr)
            if rttm is not None:
                out["long"]["scores"] = der_of(system, client, out["long"]["job_id"], rttm)
            for n, path in enumerate(shorts, 1):
                rec = run_job(client, path)
                rec["rss_kib"] = poller.rss_kib()
                out["short_jobs"].append(rec)
                print(
                    f"  short job {n}/{len(shorts)}: {rec['wall_s']:.1f} s, "
                    f"RSS {rec['rss_kib'] / 1024:.0f} MiB",
                    file=sys.stderr,
                )
            out["peak_kib"] = max(poller.peak_kib.values(), default=0)
            out["peak_by_pid_kib"] = dict(poller.peak_kib)
    return out


def load_times(log_file: Path) -> dict[str, float]:
    """`model loaded: NAME in X s` lines of the worker log (ModelManager._once)."""
    import re

    found: dict[str, float] = {}
    if log_file.exists():
        for m in re.finditer(r"model loaded: (\w+) in ([0-9.]+) s", log_file.read_text()):
            found.setdefault(m.group(1), float(m.group(2)))
    return found


def report(res: dict[str, Any]) -> str:
    sysr = res["system"]
    long = sysr["long"]
    secs = res["audio_s"]
    lines: list[str] = []
    base = res.get("baseline")
    rows: list[list[Any]] = [
        [
            "system: upload → job.succeeded",
            long["wall_s"],
            secs / long["wall_s"],
            long["wall_s"] / base["total"] if base else None,
        ],
    ]
    if base:
        rows.append(
            [
                "baseline: decode + pyannote + faster-whisper",
                base["total"],
                secs / base["total"],
                1.0,
            ]
        )
    lines.append(f"Audio: {res['audio_name']} ({secs:.1f} s). {sysr['infra']}.\n")
    lines.append(md_table(["run", "wall s", "× real time", "ratio to baseline"], rows))
    rows = []
    for stage in STAGES:
        s = long["stages_s"].get(stage)
        b = base.get(stage) if base else None
        rows.append(
            [
                stage,
                s,
                (s / secs) if s is not None else None,
                b,
                (b / secs) if b is not None else None,
            ]
        )
    lines.append("\nPer stage (elapsed_s from GET /v1/jobs/{id}; RTF = stage s / audio s):\n")
    lines.append(md_table(["stage", "system s", "system RTF", "baseline s", "baseline RTF"], rows))
    mib = 1024.0
    mem = [
        ["worker, idle before the first job (VmRSS)", sysr["rss_idle_kib"] / mib],
        ["worker, peak during the long job (VmHWM)", sysr["peak_after_long_kib"] / mib],
        ["worker, after the long job (VmRSS)", sysr["rss_after_long_kib"] / mib],
    ]
    shorts = sysr["short_jobs"]
    if shorts:
        first, nth = shorts[0]["rss_kib"], shorts[-1]["rss_kib"]
        mem += [
            ["after short job 1 (VmRSS)", first / mib],
            [f"after short job {len(shorts)} (VmRSS)", nth / mib],
            [
                f"change job 1 → job {len(shorts)}",
                f"{(nth / first - 1) * 100:+.1f} % (target ±10 %)",
            ],
        ]
    mem.append(["worker, peak over the whole run (VmHWM)", sysr["peak_kib"] / mib])
    lines.append("\nMemory of the largest worker process (MiB; target peak < 3 GB):\n")
    lines.append(
        md_table(["", "MiB"], [[a, b if isinstance(b, str) else fmt(b, 0)] for a, b in mem])
    )
    sc = long.get("scores")
    if sc:
        lines.append(
            f"\nDER (collar 0.25) {sc['der_c0.25'] * 100:.1f} % (confusion "
            f"{sc['confusion_c0.25'] * 100:.1f} %, missed {sc['missed_c0.25'] * 100:.1f} %, "
            f"false alarm {sc['false_alarm_c0.25'] * 100:.1f} %); speakers found "
            f"{sc['speakers_hyp']} of {sc['speakers_ref']}."
        )
    if shorts:
        walls = [j["wall_s"] for j in shorts]
        lines.append(
            f"\nShort jobs ({res['short_s']:.0f} s of audio each): first {walls[0]:.2f} s, "
            f"median of the rest {fmt(statistics.median(walls[1:]) if len(walls) > 1 else None)} s."
        )
    cold, warm = sysr.get("cold_short"), sysr.get("warm_short")
    if cold and warm:
        rows = []
        for stage in STAGES:
            c, w = cold["stages_s"].get(stage), warm["stages_s"].get(stage)
            rows.append([stage, c, w, (c - w) if c is not None and w is not None else None])
        rows.append(
            [
                "upload → job.succeeded",
                cold["wall_s"],
                warm["wall_s"],
                cold["wall_s"] - warm["wall_s"],
            ]
        )
        lines.append(
            f"\nModel residency: job 1 on a fresh worker (loads the models) vs job 2 "
            f"(same length, models resident), {res['short_s']:.0f} s of audio each:\n"
        )
        lines.append(md_table(["stage", "job 1 s", "job 2 s", "job 1 − job 2 (≈ load)"], rows))
    lt = res.get("load_times") or {}
    if lt:
        lines.append(
            "\nModel load times in the worker (log): "
            + ", ".join(f"{k} {v:.2f} s" for k, v in lt.items())
            + "."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = base_parser("long", __doc__.split("\n\n")[0])
    p.add_argument("--audio", type=Path, default=LONG)
    p.add_argument("--rttm", type=Path, default=LONG_RTTM)
    p.add_argument("--jobs", type=int, default=50, help="consecutive short jobs afterwards")
    p.add_argument("--short", type=Path, default=DEFAULT_AUDIO, help="the short jobs' source")
    p.add_argument("--short-s", type=float, default=20.0, help="seconds of --short per job")
    p.add_argument("--no-baseline", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.jobs, args.no_baseline = 2, True
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as bench/overhead.py (see README)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    work = Path(tempfile.mkdtemp(prefix="scribe-bench-long-"))
    whisper_dir = assemble_whisper(Path(tempfile.gettempdir()) / "scribe-bench-whisper-base")
    long_copy = args.audio  # a fresh database per run: no earlier upload of the same bytes
    shorts = [
        make_copy(args.short, work / f"short{n}.wav", 10 * (n + 1), args.short_s)
        for n in range(args.jobs + 1)
    ]
    cold, shorts = shorts[-1], shorts[:-1]
    seconds = audio_seconds(args.audio)
    t_all = time.perf_counter()
    try:
        with bench_settings(
            "long", embedded=args.embedded, keep=args.keep, models={"asr_dir": whisper_dir}
        ) as settings:
            log_file = settings.data_dir / "worker.log"
            try:
                system = run_system(
                    settings,
                    long_copy,
                    cold,
                    shorts,
                    args.rttm if args.rttm.exists() else None,
                    log_file,
                )
            except BaseException:
                if log_file.exists():
                    print(log_file.read_text()[-4000:], file=sys.stderr)
                raise
            loads = load_times(log_file)
        # The system's figures first, so a long baseline that is interrupted loses only itself.
        write_json(args.out, {"bench": "long", "partial": True, "system": system})
        base = None
        if not args.no_baseline:
            print("baseline: loading models ...", file=sys.stderr)
            b = Baseline()
            b.setup(whisper_dir)
            base = b.run(args.audio)
            base["load_s"] = b.load
            print(f"  baseline {base['total']:.1f} s", file=sys.stderr)
        res = {
            "bench": "long",
            "audio": str(args.audio),
            "audio_name": args.audio.name,
            "audio_s": seconds,
            "short_s": args.short_s,
            "system": system,
            "baseline": base,
            "load_times": loads,
        }
        table = report(res)
        print(table)
        res["wall_s"] = time.perf_counter() - t_all
        res["table_md"] = table
        print(f"\n(wrote {write_json(args.out, res)})", file=sys.stderr)
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
