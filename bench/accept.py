"""Upload acceptance: time from the end of the request body to the 202, for concurrent
multipart uploads to the gateway alone (LocalSystem(worker=False)), against a trivial
FastAPI endpoint under the same uvicorn in the same process that reads the body and
answers 202 (what HTTP costs at all; the difference is ours).

The client is a separate process (no GIL shared with the server) with one thread and one
raw socket per upload: `t_last` is taken when the last byte of the body has been handed to
the kernel (sendall returned), `t_202` when the first byte of the response arrives. An
ASGI tap in the server adds, per request, when the app received the last body message
and when it started the response (CLOCK_MONOTONIC, shared by both processes), which
splits the latency into: draining the body still buffered in sockets/parser, our handler
after the body (commit, PostgreSQL, event, enqueue), and the way back.

Each gateway first takes one unrecorded wave of 1 MB uploads at the same concurrency, so
its PostgreSQL and Redis connections are open as in a gateway that has been running.
`--http` measures each uvicorn HTTP implementation in turn (h11 on asyncio, httptools on
uvloop), every one against its own trivial endpoint.

    .venv/bin/python -m bench.accept                  # 20 x 50 MB, 2 waves per server
    .venv/bin/python -m bench.accept --quick          # 10 x 10 MB
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench._common import (
    CpuMeter,
    base_parser,
    bench_settings,
    fmt,
    infra_note,
    md_table,
    multipart_head_tail,
    pct,
    write_json,
)
from bench._servers import uvicorn_http

CHUNK = 256 * 1024
WARMUP_BYTES = 1_000_000
WARMUP_ID_OFFSET = 10_000_000


# ---------------------------------------------------------------- client (own process)


def _wav_header(size: int) -> bytes:
    """A 44-byte PCM WAV header announcing `size - 44` bytes of 16 kHz mono samples."""
    import struct

    data = max(size - 44, 0)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
        + b"data"
        + struct.pack("<I", data)
    )


def _one_upload(
    host: str, port: int, n: int, size: int, barrier: threading.Barrier, out: list[dict[str, Any]]
) -> None:
    boundary = uuid.uuid4().hex
    head, tail = multipart_head_tail(f"bench-{n}.wav", boundary)
    file_head = _wav_header(size)
    body_len = len(head) + size + len(tail)
    request = (
        f"POST /v1/jobs HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {body_len}\r\nX-Bench-Id: {n}\r\nConnection: close\r\n\r\n"
    )
    zeros = memoryview(bytes(CHUNK))
    rec: dict[str, Any] = {"id": str(n)}
    s = socket.create_connection((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        barrier.wait()
        rec["t_start"] = time.monotonic()
        s.sendall(request.encode() + head + file_head)
        left = size - len(file_head)
        while left > 0:
            k = min(left, CHUNK)
            s.sendall(zeros[:k])
            left -= k
        s.sendall(tail)
        rec["t_last"] = time.monotonic()  # the whole body is in the kernel's hands
        buf = b""
        first = True
        while b"\r\n\r\n" not in buf:
            data = s.recv(65536)
            if first:
                rec["t_202"] = time.monotonic()
                first = False
            if not data:
                break
            buf += data
        rec["status"] = int(buf.split(b" ", 2)[1]) if buf else None
    except OSError as e:
        rec["error"] = f"{type(e).__name__}: {e}"
    finally:
        s.close()
    out.append(rec)


def client_main(
    url: str, n: int, concurrency: int, size: int, id_offset: int = 0
) -> list[dict[str, Any]]:
    """`n` uploads, `concurrency` at a time, each wave started together."""
    import urllib.parse as up

    parts = up.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    results: list[dict[str, Any]] = []
    done = 0
    while done < n:
        k = min(concurrency, n - done)
        barrier = threading.Barrier(k)
        threads = [
            threading.Thread(
                target=_one_upload, args=(host, port, id_offset + done + i, size, barrier, results)
            )
            for i in range(k)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done += k
    return results


def run_client(
    url: str, n: int, concurrency: int, size: int, id_offset: int
) -> list[dict[str, Any]]:
    cmd = [
        sys.executable,
        "-m",
        "bench.accept",
        "--client",
        url,
        "--n",
        str(n),
        "--concurrency",
        str(concurrency),
        "--size-bytes",
        str(size),
        "--id-offset",
        str(id_offset),
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"client failed: {proc.stderr[-2000:]}")
    recs: list[dict[str, Any]] = json.loads(proc.stdout)
    return recs


# ---------------------------------------------------------------- server side


def _merge(recs: list[dict[str, Any]], taps: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    out = []
    for r in recs:
        t = taps.get(r["id"], {})
        row = {**r, **{f"srv_{k}": v for k, v in t.items()}}
        if "t_202" in r and "t_last" in r:
            row["latency_s"] = r["t_202"] - r["t_last"]
            row["upload_s"] = r["t_last"] - r["t_start"]
        if "body_end" in t and "t_last" in r:
            row["drain_s"] = t["body_end"] - r["t_last"]  # body still queued when sent
        if "body_end" in t and "response_start" in t:
            row["handler_tail_s"] = t["response_start"] - t["body_end"]
        if "response_start" in t and "t_202" in r:
            row["return_s"] = r["t_202"] - t["response_start"]
        out.append(row)
    return out


def summarise(rows: list[dict[str, Any]], size: int, wall: float) -> dict[str, Any]:
    ok = [r for r in rows if r.get("status") == 202 and "latency_s" in r]
    lat = [r["latency_s"] for r in ok]

    def p(key: str, q: float) -> float:
        return pct([r[key] for r in ok if key in r], q)

    return {
        "n": len(rows),
        "ok": len(ok),
        "errors": sorted({str(r.get("error") or r.get("status")) for r in rows if r not in ok}),
        "p50_ms": pct(lat, 50) * 1000,
        "p99_ms": pct(lat, 99) * 1000,
        "max_ms": max(lat) * 1000 if lat else None,
        "drain_p50_ms": p("drain_s", 50) * 1000,
        "drain_p99_ms": p("drain_s", 99) * 1000,
        "tail_p50_ms": p("handler_tail_s", 50) * 1000,
        "tail_p99_ms": p("handler_tail_s", 99) * 1000,
        "return_p99_ms": p("return_s", 99) * 1000,
        "upload_p50_s": p("upload_s", 50),
        "throughput_mb_s": len(ok) * size / 1e6 / wall if wall else None,
    }


def run_gateway(
    settings: Any, waves: int, n: int, conc: int, size: int, offset: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from bench._servers import tapped_gateway
    from cli.local import LocalSystem

    rows: list[dict[str, Any]] = []
    meters = []
    with tapped_gateway() as taps, LocalSystem(settings, worker=False) as system:
        # A gateway that has been up a while has its PostgreSQL and Redis connections
        # open: one unrecorded wave of small uploads at the same concurrency opens them,
        # so the figures are not those of a gateway's very first burst.
        run_client(system.url, conc, conc, WARMUP_BYTES, WARMUP_ID_OFFSET + offset)
        for w in range(waves):
            with CpuMeter() as m:
                t = time.monotonic()
                recs = run_client(system.url, n, conc, size, offset + w * n)
                wall = time.monotonic() - t
            meters.append({**m.result, "wall_s": wall})
            rows += _merge(recs, taps[-1].records)
            shutil.rmtree(Path(settings.storage_root) / "jobs", ignore_errors=True)
    return rows, {"meters": meters}


def run_trivial(
    waves: int, n: int, conc: int, size: int, offset: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from bench._servers import Tap, UvicornThread, trivial_upload_app

    tap = Tap(trivial_upload_app())
    rows: list[dict[str, Any]] = []
    meters = []
    with UvicornThread(tap) as server:
        for w in range(waves):
            with CpuMeter() as m:
                t = time.monotonic()
                recs = run_client(server.url, n, conc, size, offset + w * n)
                wall = time.monotonic() - t
            meters.append({**m.result, "wall_s": wall})
            rows += _merge(recs, tap.records)
    return rows, {"meters": meters}


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = base_parser("accept", __doc__.split("\n\n")[0])
    p.add_argument("--size-mb", type=float, default=50.0, help="size of each upload, MB (1e6)")
    p.add_argument("--concurrency", type=int, default=20, help="uploads sent at the same time")
    p.add_argument(
        "--waves",
        type=int,
        default=2,
        help="waves of `concurrency` uploads per server and per round",
    )
    p.add_argument(
        "--http",
        default="h11,httptools",
        help="uvicorn HTTP implementations to measure, in order (h11, httptools, auto); "
        "the first is the baseline of the 'p99 vs' column",
    )
    p.add_argument(
        "--sequential",
        type=int,
        default=5,
        help="also this many uploads one at a time (uncontended latency); 0: skip",
    )
    # internal: the client process
    p.add_argument("--client", help=argparse_suppress())
    p.add_argument("--n", type=int, help=argparse_suppress())
    p.add_argument("--size-bytes", type=int, help=argparse_suppress())
    p.add_argument("--id-offset", type=int, default=0, help=argparse_suppress())
    args = p.parse_args(argv)

    if args.client:
        print(
            json.dumps(
                client_main(args.client, args.n, args.concurrency, args.size_bytes, args.id_offset)
            )
        )
        return 0

    if args.quick:
        args.size_mb, args.concurrency, args.waves, args.sequential = 10.0, 10, 1, 3
    size = int(args.size_mb * 1e6)
    conc = args.concurrency
    impls = [i.strip() for i in args.http.split(",") if i.strip()]
    t_all = time.monotonic()
    results: dict[str, Any] = {}
    # Per HTTP implementation, alternate: trivial, gateway, trivial, gateway (one wave
    # each time), then the sequential uploads.
    kinds = ("trivial", "gateway", "trivial_seq", "gateway_seq")
    rows: dict[str, list[dict[str, Any]]] = {f"{k}@{i}": [] for i in impls for k in kinds}
    meters: dict[str, list[dict[str, Any]]] = {k: [] for k in rows}
    with bench_settings(
        "accept",
        embedded=args.embedded,
        keep=args.keep,
        max_upload_bytes=max(size * 2, 2 * 1024**3),
    ) as settings:
        note = infra_note(settings)
        offset = 0
        for impl in impls:
            plan = [("trivial", conc, conc), ("gateway", conc, conc)] * args.waves
            if args.sequential:
                plan += [(f"{k}_seq", args.sequential, 1) for k in ("trivial", "gateway")]
            with uvicorn_http(impl):
                for kind, count, at_once in plan:
                    print(
                        f"{impl}: {kind}: {count} x {args.size_mb:g} MB, {at_once} at a time ...",
                        file=sys.stderr,
                    )
                    if kind.startswith("gateway"):
                        r, info = run_gateway(settings, 1, count, at_once, size, offset)
                    else:
                        r, info = run_trivial(1, count, at_once, size, offset)
                    offset += count
                    rows[f"{kind}@{impl}"] += r
                    meters[f"{kind}@{impl}"] += info["meters"]

    for key, rs in rows.items():
        if not rs:
            continue
        wall = sum(m["wall_s"] for m in meters[key])
        results[key] = summarise(rs, size, wall)
        results[key]["other_cores"] = max(m["other_cores"] for m in meters[key])
    label = {
        "trivial": f"baseline: trivial FastAPI endpoint, {conc} concurrent",
        "gateway": f"gateway POST /v1/jobs, {conc} concurrent",
        "trivial_seq": "baseline: trivial endpoint, one at a time",
        "gateway_seq": "gateway POST /v1/jobs, one at a time",
    }
    table_rows = []
    for impl in impls:
        for kind in kinds:
            key = f"{kind}@{impl}"
            if key not in results:
                continue
            s = results[key]
            base_key = f"{'trivial_seq' if kind.endswith('_seq') else 'trivial'}@{impl}"
            base = results.get(base_key) if kind.startswith("gateway") else None
            ratio = (
                f"{s['p50_ms'] / base['p50_ms']:.1f}× / {s['p99_ms'] / base['p99_ms']:.1f}×"
                if base
                else "1 (baseline)"
            )
            first = results.get(f"{kind}@{impls[0]}")
            vs_first = (
                f"{s['p99_ms'] / first['p99_ms']:.2f}×" if first and impl != impls[0] else "–"
            )
            table_rows.append(
                [
                    f"{impl} ({'uvloop' if impl == 'httptools' else 'asyncio'})"
                    if impl != "auto"
                    else "auto",
                    label[kind],
                    f"{s['ok']}/{s['n']}",
                    s["p50_ms"],
                    s["p99_ms"],
                    ratio,
                    vs_first,
                    s["drain_p99_ms"],
                    s["tail_p50_ms"],
                    s["tail_p99_ms"],
                    s["throughput_mb_s"],
                    s["other_cores"],
                ]
            )
    table = (
        f"Upload acceptance, {args.size_mb:g} MB per upload ({note}); latency = end of "
        "request body (client) → first byte of the 202 (client).\n\n"
        + md_table(
            [
                "HTTP",
                "server, load",
                "202s",
                "p50 ms",
                "p99 ms",
                "vs trivial p50/p99",
                f"p99 vs {impls[0]}",
                "drain p99 ms",
                "handler tail p50 ms",
                "handler tail p99 ms",
                "MB/s (all uploads)",
                "other load (cores)",
            ],
            table_rows,
        )
    )
    g = results.get(f"gateway@{impls[-1]}", {})
    verdict = "met" if g.get("p99_ms", 1e9) < 100 else "MISSED"
    table += (
        f"\n\nTarget p99 < 100 ms under {conc} × {args.size_mb:g} MB with {impls[-1]}: "
        f"**{verdict}** (p99 {fmt(g.get('p99_ms'), 1)} ms). `drain` = the tap saw the last "
        "body message this long after the client handed it over (body still queued in "
        "socket buffers / being parsed); `handler tail` = app got the last body "
        "message → app started the 202 (commit, PostgreSQL, event, enqueue)."
    )
    print(table)
    out = write_json(
        args.out,
        {
            "bench": "accept",
            "http": impls,
            "size_mb": args.size_mb,
            "concurrency": conc,
            "waves": args.waves,
            "wall_s": time.monotonic() - t_all,
            "infra": note,
            "summary": results,
            "meters": meters,
            "rows": rows,
            "table_md": table,
        },
    )
    print(f"\n(wrote {out})", file=sys.stderr)
    return 0


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    raise SystemExit(main())
