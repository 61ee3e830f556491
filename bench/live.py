"""Live meetings: how long after a word is spoken it is final on the job's event stream.

    python -m bench.live [--audio FILE] [--max-s 60] [--quick] [--out bench/results/live.json]

Streams the recording in real time (0.5 s chunks, each sent once its last sample has been
"spoken") through the whole live path: the gateway's socket, the store, the live worker on
its own queue (faster-whisper base int8 with LocalAgreement, CAM++ speakers), the job's
event stream. A word's latency is the time its `live.caption` event (final) arrived minus
the moment its end was spoken. Measured with one meeting, then two at once on the same live
worker. The baseline, in the same command: the same recognizer (stages.live.asr) fed the
same audio at the same pace in this process, with nothing between (no socket, store, queue
or events). Also: live worker CPU seconds per minute of meeting, and the live draft's WER
and DER against the transcript the full pipeline made of the same recording.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from bench._common import (
    REPO,
    CpuMeter,
    base_parser,
    bench_settings,
    fmt,
    machine,
    md_table,
    pct,
    proc_tree_cpu,
    write_json,
)

DEFAULT_AUDIO = REPO / "tests/data/audio/mix/meeting_4spk.wav"
CHUNK_S = 0.5


def _pcm(path: Path, max_s: float) -> bytes:
    from cli.live_stream import BYTES_PER_SECOND, read_pcm

    return read_pcm(str(path))[: int(max_s * BYTES_PER_SECOND)]


def baseline(pcm: bytes) -> dict[str, Any]:
    """The recognizer alone, in this process, fed in real time."""
    import numpy as np

    from core.settings import Settings
    from stages.engines.models import ModelManager
    from stages.live.asr import LocalAgreement, transcriber_words

    settings = Settings()
    settings.models.cpu_threads = len(os.sched_getaffinity(0))
    transcriber = ModelManager(settings).transcriber()
    live = settings.live
    la = LocalAgreement(
        transcriber_words(transcriber, language=None, beam_size=live.beam_size),
        window_s=live.window_s,
        step_s=live.step_s,
    )
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    step = int(CHUNK_S * 16000)
    latencies: list[float] = []
    cpu0, t0 = time.process_time(), time.monotonic()
    i = 0
    while i < len(audio):
        # Everything spoken by now is added before a pass, as the live worker reads every
        # chunk stored by then: a slow pass makes the next one longer, not later and later.
        while i < len(audio) and t0 + (i + step) / 16000 <= time.monotonic():
            la.add(audio[i : i + step])
            i += step
        if la.ready():
            for w in la.step().final:
                latencies.append(time.monotonic() - (t0 + w.end))
        elif i < len(audio):
            time.sleep(max(0.0, t0 + (i + step) / 16000 - time.monotonic()))
    for w in la.finish().final:
        latencies.append(time.monotonic() - (t0 + w.end))
    cpu = time.process_time() - cpu0
    return _summary(latencies, cpu, len(audio) / 16000)


def _summary(latencies: list[float], cpu_s: float, audio_s: float) -> dict[str, Any]:
    return {
        "words": len(latencies),
        "p50_s": pct(latencies, 50),
        "p95_s": pct(latencies, 95),
        "max_s": max(latencies) if latencies else float("nan"),
        "cpu_s": cpu_s,
        "cpu_s_per_live_min": cpu_s / (audio_s / 60) if audio_s else float("nan"),
    }


async def _meeting(url: str, pcm: bytes, wait_final: bool) -> dict[str, Any]:
    from cli.live_stream import LiveStreamer, run_live
    from core.events import JobEvent

    finals: list[tuple[float, float]] = []  # (word end in audio, arrival)
    streamer: LiveStreamer

    def on_event(event: JobEvent, at: float) -> None:
        if event.type == "live.caption" and event.caption is not None:
            finals.extend((w.end, at) for w in event.caption.final)

    streamer = LiveStreamer(url, chunk_s=CHUNK_S, on_event=on_event)
    try:
        outcome, result = await run_live(streamer, pcm, wait_final=wait_final)
        draft = await streamer.http.get(f"/v1/live/{outcome.job_id}/draft")
    finally:
        await streamer.aclose()
    # Words said after Stop was sent are final only at the end: still counted.
    latencies = [at - (outcome.started + end) for end, at in finals]
    return {
        "job_id": outcome.job_id,
        "latencies": latencies,
        "stored_s": outcome.stored_s,
        "result": result,
        "draft": draft.json() if draft.status_code == 200 else None,
    }


def accuracy(draft: dict[str, Any] | None, result: dict[str, Any] | None) -> dict[str, float]:
    """The live draft against the final transcript: WER of the words, DER of the speakers."""
    from bench.eval import annotation, diarization_scores, wer_counts

    if not draft or not result:
        return {}
    lines = draft["lines"]
    segments = result["segments"]
    errors, total = wer_counts(
        " ".join(s["text"] for s in segments), " ".join(line["text"] for line in lines)
    )
    ref = annotation((s["start"], s["end"], s["speaker"]) for s in segments)
    hyp = annotation((x["start"], x["end"], x["speaker"] or "?") for x in lines)
    der = diarization_scores(ref, hyp)
    return {
        "wer": errors / max(total, 1),
        "der": der["der_c0.25"],
        "speakers_final": der["speakers_ref"],
        "speakers_live": der["speakers_hyp"],
    }


def system_runs(pcm: bytes, embedded: bool, keep: bool) -> dict[str, Any]:
    from cli.local import LocalSystem

    out: dict[str, Any] = {}
    with bench_settings("live", embedded=embedded, keep=keep) as settings:
        log = settings.data_dir / "worker.log"
        system = LocalSystem(settings, live_worker=True, worker_log=log, shutdown_timeout=10)
        system.start()
        try:
            assert system.live_worker is not None and system.live_worker.proc is not None
            live_pid = system.live_worker.proc.pid
            time.sleep(5)  # the live worker loads Whisper and CAM++ before it reads its queue

            def live_cpu() -> float:
                import psutil

                pids = [live_pid, *(c.pid for c in psutil.Process(live_pid).children(True))]
                return proc_tree_cpu(pids)

            for sessions in (1, 2):
                cpu0 = live_cpu()
                with CpuMeter() as meter:
                    runs = asyncio.run(_together(system.url, pcm, sessions))
                cpu = live_cpu() - cpu0
                latencies = [x for r in runs for x in r["latencies"]]
                audio_s = sum(r["stored_s"] for r in runs)
                summary = _summary(latencies, cpu, audio_s)
                summary["other_cores"] = meter.result["other_cores"]
                summary.update(accuracy(runs[0]["draft"], runs[0]["result"]))
                summary["stored_s"] = [r["stored_s"] for r in runs]
                out[f"sessions_{sessions}"] = summary
        finally:
            system.stop()
    return out


async def _together(url: str, pcm: bytes, sessions: int) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(_meeting(url, pcm, True) for _ in range(sessions))))


def main() -> None:
    p = base_parser("live", __doc__.split("\n\n")[0] if __doc__ else "live latency")
    p.add_argument("--audio", type=Path, default=DEFAULT_AUDIO)
    p.add_argument("--max-s", type=float, default=60.0, help="seconds of the recording to stream")
    args = p.parse_args()
    max_s = 30.0 if args.quick else args.max_s
    pcm = _pcm(args.audio, max_s)
    with CpuMeter() as meter:
        base = baseline(pcm)
    base["other_cores"] = meter.result["other_cores"]
    runs = system_runs(pcm, args.embedded, args.keep)
    b = base
    rows = [["recognizer alone (baseline)", b["words"], b["p50_s"], b["p95_s"], b["max_s"],
             b["cpu_s_per_live_min"], "–", "–", b["other_cores"]]]  # fmt: skip
    for name, r in runs.items():
        rows.append([name.replace("_", " "), r["words"], r["p50_s"], r["p95_s"], r["max_s"],
                     r["cpu_s_per_live_min"], fmt(r.get("wer")), fmt(r.get("der")),
                     r["other_cores"]])  # fmt: skip
    print(f"\n{args.audio.name}, first {max_s:g} s, chunks of {CHUNK_S} s\n")
    print(md_table(["run", "final words", "p50 s", "p95 s", "max s", "CPU s / live min",
                    "draft WER", "draft DER", "other cores busy"], rows))  # fmt: skip
    payload = {"machine": machine(), "audio": str(args.audio), "max_s": max_s,
               "baseline": base, "system": runs}  # fmt: skip
    print(f"\n(written to {write_json(args.out, payload)})")


if __name__ == "__main__":
    main()
