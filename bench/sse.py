"""Event latency: EventBus.publish → arrival at 50 concurrent SSE clients over HTTP
(GET /v1/jobs/{id}/events on the gateway alone), against a raw Redis Pub/Sub subscriber
on the same channel in the same client process (the floor Redis itself sets), and against
50 raw subscribers (the same fan-out without the gateway).

Every event is a JobEvent whose `ts` is taken just before EventBus.publish (XADD, then
PUBLISH); a client's latency is its arrival time (time.time(), same clock) minus `ts`.
The clients run in a separate process (one asyncio loop), so they share no GIL with the
gateway; the publisher runs in the gateway's process, as a worker's events would reach it
through Redis anyway.

    .venv/bin/python -m bench.sse            # 50 clients, 400 events at 25 ms
    .venv/bin/python -m bench.sse --quick    # 50 clients, 100 events
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._common import (
    CpuMeter,
    base_parser,
    bench_settings,
    infra_note,
    md_table,
    pct,
    write_json,
)

TERMINAL = ("job.succeeded", "job.failed")


# ---------------------------------------------------------------- client process


async def _sse_client(
    url: str,
    job_id: str,
    ready: asyncio.Event,
    lat: list[float],
    counts: list[int],
    i: int,
    connected: list[int],
    total: int,
) -> None:
    import httpx

    async with (
        httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(120.0)) as client,
        client.stream("GET", f"/v1/jobs/{job_id}/events") as resp,
    ):
        resp.raise_for_status()
        data: list[str] = []
        async for line in resp.aiter_lines():
            if line.startswith("data:"):
                data.append(line[5:].lstrip())
                continue
            if line or not data:
                continue
            now = time.time()
            body = json.loads("\n".join(data))
            data = []
            if body["type"] == "job.queued":  # history: subscribed and replayed
                connected[0] += 1
                if connected[0] == total:
                    ready.set()
                continue
            if body["type"] in TERMINAL:
                return
            lat.append(now - body["ts"])
            counts[i] += 1


async def _redis_client(
    redis_url: str,
    channel: str,
    ready: asyncio.Event,
    lat: list[float],
    counts: list[int],
    i: int,
    connected: list[int],
    total: int,
) -> None:
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(redis_url)
    pubsub = r.pubsub()
    await pubsub.subscribe(channel)
    # The first get_message consumes the subscribe confirmation (answering None), so the
    # subscription is confirmed before READY.
    while await pubsub.get_message(timeout=10.0) is None:
        pass
    connected[0] += 1
    if connected[0] == total:
        ready.set()
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
            if msg is None:
                continue
            now = time.time()
            body = json.loads(msg["data"])
            if body["type"] in TERMINAL:
                return
            lat.append(now - body["ts"])
            counts[i] += 1
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis leaves it unannotated
        await r.aclose()


async def client_main(
    mode: str, url: str, job_id: str, redis_url: str, channel: str, clients: int
) -> dict[str, Any]:
    """mode "sse": `clients` SSE clients + 1 raw subscriber; "redis": `clients` raw ones."""
    ready = asyncio.Event()
    sse_lat: list[float] = []
    raw_lat: list[float] = []
    sse_counts = [0] * clients
    raw_n = 1 if mode == "sse" else clients
    raw_counts = [0] * raw_n
    connected = [0]
    total = clients + 1 if mode == "sse" else clients
    tasks = []
    if mode == "sse":
        tasks += [
            asyncio.create_task(
                _sse_client(url, job_id, ready, sse_lat, sse_counts, i, connected, total)
            )
            for i in range(clients)
        ]
    tasks += [
        asyncio.create_task(
            _redis_client(redis_url, channel, ready, raw_lat, raw_counts, i, connected, total)
        )
        for i in range(raw_n)
    ]
    await asyncio.wait_for(ready.wait(), 60)
    print("READY", flush=True)
    await asyncio.wait_for(asyncio.gather(*tasks), 600)
    return {"sse": sse_lat, "sse_counts": sse_counts, "raw": raw_lat, "raw_counts": raw_counts}


# ---------------------------------------------------------------- publisher side


async def publish(settings: Any, job_id: str, events: int, interval: float) -> None:
    import redis.asyncio as aioredis

    from core.events import JobEvent
    from events.bus import EventBus

    r = aioredis.Redis.from_url(settings.redis_url)
    bus = EventBus(r, settings.redis_prefix, maxlen=settings.events_maxlen)
    try:
        start = time.monotonic()
        for n in range(events):
            # ts defaults to time.time() when the event is built, right before publish.
            await bus.publish(
                JobEvent(
                    type="stage.progress",
                    job_id=job_id,
                    stage="diarize",
                    step="bench",
                    progress=n / events,
                )
            )
            # a fixed rate, not "sleep after": the publish time itself does not slow it down
            delay = start + (n + 1) * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await bus.publish(JobEvent(type="job.succeeded", job_id=job_id))
    finally:
        await r.aclose()


def run_round(
    mode: str, settings: Any, url: str, job_id: str, clients: int, events: int, interval: float
) -> dict[str, Any]:
    channel = f"{settings.redis_prefix}:live:{job_id}"
    import tempfile

    result_file = Path(tempfile.mkstemp(prefix="scribe-bench-sse-", suffix=".json")[1])
    cmd = [
        sys.executable,
        "-m",
        "bench.sse",
        "--client",
        mode,
        "--url",
        url,
        "--job",
        job_id,
        "--redis-url",
        settings.redis_url,
        "--channel",
        channel,
        "--clients",
        str(clients),
        "--result-file",
        str(result_file),
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    if line.strip() != "READY":
        proc.kill()
        raise RuntimeError(f"client did not get ready: {line} {proc.stderr.read()[-2000:]}")
    with CpuMeter() as meter:
        asyncio.run(publish(settings, job_id, events, interval))
        out, err = proc.communicate(timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"client failed: {err[-2000:]}")
    result: dict[str, Any] = json.loads(result_file.read_text())
    result_file.unlink()
    result["machine_load"] = meter.result
    return result


def create_job(url: str) -> str:
    import struct

    import httpx

    pcm = bytes(2 * 16000)  # 1 s of silence
    wav = (
        b"RIFF"
        + struct.pack("<I", 36 + len(pcm))
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
        + b"data"
        + struct.pack("<I", len(pcm))
        + pcm
    )
    resp = httpx.post(f"{url}/v1/jobs", files={"file": ("silence.wav", wav, "audio/wav")})
    resp.raise_for_status()
    return str(resp.json()["id"])


def stats(lat: list[float]) -> dict[str, float]:
    return {
        "n": len(lat),
        "p50_ms": pct(lat, 50) * 1000,
        "p90_ms": pct(lat, 90) * 1000,
        "p99_ms": pct(lat, 99) * 1000,
        "max_ms": (max(lat) * 1000) if lat else float("nan"),
    }


def _ratios(stats: dict[str, Any], base: dict[str, Any]) -> str:
    """p50 and p99 of `stats` as multiples of `base`'s."""
    return f"{stats['p50_ms'] / base['p50_ms']:.1f}× / {stats['p99_ms'] / base['p99_ms']:.1f}×"


def main(argv: list[str] | None = None) -> int:
    p = base_parser("sse", __doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=50, help="concurrent SSE clients")
    p.add_argument("--events", type=int, default=400, help="events published per round")
    p.add_argument("--interval-ms", type=float, default=25.0, help="time between events")
    p.add_argument(
        "--rounds", type=int, default=2, help="rounds of (SSE + 1 raw, then N raw), alternated"
    )
    import argparse

    for hidden in ("--client", "--url", "--job", "--redis-url", "--channel", "--result-file"):
        p.add_argument(hidden, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.client:
        result = asyncio.run(
            client_main(args.client, args.url, args.job, args.redis_url, args.channel, args.clients)
        )
        Path(args.result_file).write_text(json.dumps(result))
        return 0

    if args.quick:
        args.events, args.rounds = 100, 1
    from cli.local import LocalSystem

    t_all = time.monotonic()
    rounds: list[dict[str, Any]] = []
    with (
        bench_settings("sse", embedded=args.embedded, keep=args.keep) as settings,
        LocalSystem(settings, worker=False) as system,
    ):
        note = infra_note(settings)
        for r in range(args.rounds):
            for mode in ("sse", "redis"):
                job_id = create_job(system.url)  # a fresh job: its stream ends at job.succeeded
                print(
                    f"round {r + 1}: {mode}, {args.clients} clients, {args.events} events ...",
                    file=sys.stderr,
                )
                res = run_round(
                    mode,
                    system.settings,
                    system.url,
                    job_id,
                    args.clients,
                    args.events,
                    args.interval_ms / 1000,
                )
                res["mode"], res["round"] = mode, r + 1
                rounds.append(res)

    def agg(mode: str, key: str) -> list[float]:
        return [x for rd in rounds if rd["mode"] == mode for x in rd[key]]

    expected = args.events * args.rounds
    sse_all, raw_in_sse, raw_all = agg("sse", "sse"), agg("sse", "raw"), agg("redis", "raw")
    lost_sse = sum(
        expected // args.rounds - c
        for rd in rounds
        if rd["mode"] == "sse"
        for c in rd["sse_counts"]
    )
    lost_raw = sum(
        expected // args.rounds - c
        for rd in rounds
        if rd["mode"] == "redis"
        for c in rd["raw_counts"]
    )
    s_sse, s_raw1, s_rawn = stats(sse_all), stats(raw_in_sse), stats(raw_all)
    other = max(rd["machine_load"]["other_cores"] for rd in rounds)
    rows = [
        [
            f"baseline: 1 raw Redis subscriber (beside the {args.clients} SSE clients)",
            s_raw1["n"],
            s_raw1["p50_ms"],
            s_raw1["p90_ms"],
            s_raw1["p99_ms"],
            s_raw1["max_ms"],
            "1 (baseline)",
            0,
        ],
        [
            f"baseline: {args.clients} raw Redis subscribers",
            s_rawn["n"],
            s_rawn["p50_ms"],
            s_rawn["p90_ms"],
            s_rawn["p99_ms"],
            s_rawn["max_ms"],
            _ratios(s_rawn, s_raw1),
            lost_raw,
        ],
        [
            f"{args.clients} SSE clients via the gateway",
            s_sse["n"],
            s_sse["p50_ms"],
            s_sse["p90_ms"],
            s_sse["p99_ms"],
            s_sse["max_ms"],
            _ratios(s_sse, s_raw1),
            lost_sse,
        ],
    ]
    table = (
        f"Publish → arrival, {args.events} events × {args.rounds} round(s) at "
        f"{args.interval_ms:g} ms ({note}; other load up to {other:.2f} cores).\n\n"
        + md_table(
            [
                "receiver",
                "samples",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
                "vs 1 raw p50/p99",
                "lost",
            ],
            rows,
        )
    )
    table += (
        f"\n\nGateway cost per event and client: p50 "
        f"{s_sse['p50_ms'] - s_rawn['p50_ms']:+.2f} ms, p99 "
        f"{s_sse['p99_ms'] - s_rawn['p99_ms']:+.2f} ms over {args.clients} raw subscribers."
    )
    print(table)
    out = write_json(
        args.out,
        {
            "bench": "sse",
            "clients": args.clients,
            "events": args.events,
            "interval_ms": args.interval_ms,
            "rounds_n": args.rounds,
            "wall_s": time.monotonic() - t_all,
            "infra": note,
            "summary": {
                "sse": s_sse,
                "raw_beside_sse": s_raw1,
                "raw_n": s_rawn,
                "lost_sse": lost_sse,
                "lost_raw": lost_raw,
                "other_cores_max": other,
            },
            "rounds": [{k: v for k, v in rd.items() if k not in ("sse", "raw")} for rd in rounds],
            "table_md": table,
        },
    )
    print(f"\n(wrote {out})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
