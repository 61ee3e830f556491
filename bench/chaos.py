"""Chaos: submit N jobs, kill -9 the worker's whole process group at random moments (inside
a stage, between two stages, while an artifact is being written), restart it, and count
what became of every job.

    python -m bench.chaos --jobs 20 --kills 100 --minutes 10

A job counts as
- succeeded: status `succeeded`, exactly one `job.succeeded` event, every stage's
  artifact recorded once (version 1, no `.tmp-` object recorded), and its result readable;
- duplicated: a second `job.succeeded`, or a stage with more than one artifact version;
- lost: failed, or finished without a readable result;
- stuck: still queued or running at the deadline.

PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379 are used when they answer (a
fresh database and key prefix per run, removed afterwards), else embedded servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import time
import urllib.parse as up
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis.typing import KeyT, StreamIdT

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/chaos.py` as well as `python -m bench.chaos`
    sys.path.insert(0, str(REPO))

from cli.local import LocalSystem, WorkerProcess  # noqa: E402
from core.graph import DEFAULT_GRAPH  # noqa: E402

STAGES = DEFAULT_GRAPH.names
from core.settings import Settings, StorageSettings  # noqa: E402

MOMENTS = ("in-stage", "between-stages", "during-write")
DEFAULT_AUDIO = REPO / "tests" / "data" / "audio" / "misc" / "english.wav"


@dataclass
class Kill:
    moment: str  # what was aimed at
    stage: str | None  # the stage running (or just finished) when the group was killed
    at_s: float  # seconds since the start of the run
    recovered_s: float | None = None  # until the next stage.started after the restart


@dataclass
class ChaosReport:
    jobs: int
    kills: int
    succeeded: int
    lost: int
    duplicated: int
    stuck: int
    kills_by_moment: dict[str, int]
    kills_by_stage: dict[str, int]
    tmp_leftovers: int  # `.tmp-` objects left in storage (swept later, never recorded)
    duration_s: float
    recovery_s_median: float | None
    recovery_s_max: float | None
    problems: list[str] = field(default_factory=list)
    kill_log: list[Kill] = field(default_factory=list)

    def table(self) -> str:
        rows = [
            ("jobs", self.jobs),
            ("kills (kill -9 of the worker's process group)", self.kills),
            ("  by moment", ", ".join(f"{k} {v}" for k, v in sorted(self.kills_by_moment.items()))),
            ("  by stage", ", ".join(f"{k} {v}" for k, v in sorted(self.kills_by_stage.items()))),
            ("succeeded exactly once", self.succeeded),
            ("lost", self.lost),
            ("duplicated", self.duplicated),
            ("stuck", self.stuck),
            ("`.tmp-` objects left (never recorded; swept later)", self.tmp_leftovers),
            (
                "kill → next stage started, median / max (s)",
                f"{self.recovery_s_median} / {self.recovery_s_max}",
            ),
            ("wall time (s)", round(self.duration_s, 1)),
        ]
        return "\n".join(["| | |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])


def chaos_settings(base: Settings, *, lease_ttl_s: float = 4.0) -> Settings:
    """Fast recovery for a run that kills often; the broker's idle timeout stays long, so
    every takeover is the reaper's doing, not a redelivery."""
    return base.model_copy(
        update={
            "lease_ttl_s": lease_ttl_s,
            "reaper_interval_s": 1.0,
            "stall_after_s": 2 * lease_ttl_s,
            "broker_idle_timeout_s": 3600,
            "orphan_max_age_s": 3600.0,
        }
    )


class Chaos:
    def __init__(
        self,
        settings: Settings,
        *,
        audio: Path,
        jobs: int,
        kills: int,
        seed: int = 0,
        worker_log: Path,
        minutes: float = 10.0,
        verbose: bool = False,
        workers: int = 1,
    ) -> None:
        self.settings = settings
        self.workers = workers  # worker processes, all in the group each kill ends
        self.audio = audio
        self.n_jobs = jobs
        self.n_kills = kills
        self.rng = random.Random(seed)
        self.worker_log = worker_log
        self.deadline = time.monotonic() + minutes * 60
        # Kills stop early enough for the last jobs to finish before the deadline.
        self.kill_deadline = time.monotonic() + minutes * 60 * 0.7
        self.verbose = verbose
        self.kills: list[Kill] = []
        self.t0 = time.monotonic()
        self.job_ids: list[str] = []
        self.worker: WorkerProcess | None = None
        self.running: dict[str, str] = {}  # job id -> stage started and not finished
        self.done: set[str] = set()
        self.last_ids: dict[str, str] = {}

    # ------------------------------------------------------------ the run

    def run(self) -> ChaosReport:
        import httpx
        import redis

        system = LocalSystem(self.settings, worker=False, shutdown_timeout=2)
        system.start()
        try:
            self.settings = system.settings
            assert self.settings.redis_url
            self.redis = redis.Redis.from_url(self.settings.redis_url)
            self._start_worker()
            data = self.audio.read_bytes()
            with httpx.Client(base_url=system.url, timeout=60) as http:
                for i in range(self.n_jobs):
                    resp = http.post(
                        "/v1/jobs",
                        files={"file": (f"chaos-{i}{self.audio.suffix}", data)},
                        data={"language": "en"},
                    )
                    resp.raise_for_status()
                    self.job_ids.append(resp.json()["id"])
                self.last_ids = dict.fromkeys(self.job_ids, "0-0")
                self._kill_loop()
                self._wait_all()
                self._settle(http)
                report = self._verify(http)
        finally:
            if self.worker is not None:
                self._kill_group()
            system.stop()
            with contextlib.suppress(Exception):
                self.redis.close()
        return report

    def _start_worker(self) -> None:
        self.worker = WorkerProcess(
            self.settings, workers=self.workers, log_file=self.worker_log, shutdown_timeout=2
        )
        self.worker.start()

    def _kill_group(self) -> None:
        assert self.worker is not None and self.worker.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.worker.proc.pid, signal.SIGKILL)
        self.worker.proc.wait(10)

    def _log(self, text: str) -> None:
        if self.verbose:
            print(f"[{time.monotonic() - self.t0:7.2f}] {text}", flush=True)

    # ------------------------------------------------------------ events

    def _poll(self, block_ms: int) -> list[dict[str, Any]]:
        """New events of every unfinished job, in stream order per job."""
        streams: dict[KeyT, StreamIdT] = {
            f"{self.settings.redis_prefix}:events:{j}": self.last_ids[j]
            for j in self.job_ids
            if j not in self.done
        }
        if not streams:
            return []
        got: Any = self.redis.xread(streams, block=block_ms or None, count=100)
        events = []
        for stream, entries in got or []:
            job_id = stream.decode().rsplit(":", 1)[1]
            for eid, fields in entries:
                self.last_ids[job_id] = eid.decode()
                event = json.loads(fields[b"e"])
                events.append(event)
                kind, stage = event["type"], event.get("stage")
                if kind == "stage.started":
                    self.running[job_id] = stage
                elif kind in ("stage.finished", "stage.failed"):
                    self.running.pop(job_id, None)
                elif kind in ("job.succeeded", "job.failed"):
                    self.done.add(job_id)
        return events

    def _tmp_in_running_jobs(self) -> bool:
        root = Path(self.settings.storage_root) / "jobs"
        for job_id in list(self.running):
            for _dirpath, _dirs, files in os.walk(root / job_id):
                if any(".tmp-" in f for f in files):
                    return True
        return False

    # ------------------------------------------------------------ killing

    def _kill_loop(self) -> None:
        while len(self.kills) < self.n_kills and time.monotonic() < self.kill_deadline:
            if len(self.done) == len(self.job_ids):
                return
            moment = self.rng.choice(MOMENTS)
            target = self.rng.choice(STAGES)
            fired = self._arm(moment, target)
            if fired is None:
                continue
            moment, stage = fired
            self._kill_group()
            kill = Kill(moment=moment, stage=stage, at_s=round(time.monotonic() - self.t0, 3))
            self.kills.append(kill)
            self._log(f"kill #{len(self.kills)} {moment} ({stage})")
            self.running.clear()
            killed_at = time.monotonic()
            self._start_worker()
            # Let the new worker make progress before the next kill.
            while time.monotonic() < self.deadline and len(self.done) < len(self.job_ids):
                if any(e["type"] == "stage.started" for e in self._poll(200)):
                    kill.recovered_s = round(time.monotonic() - killed_at, 2)
                    break

    def _arm(self, moment: str, target: str) -> tuple[str, str] | None:
        """Wait for the moment; return it with the stage it concerns (None: nothing came).
        A write is over in milliseconds: when none is caught within a few seconds, the
        kill happens anyway, inside whatever stage runs, and counts as such."""
        give_up = min(self.kill_deadline, time.monotonic() + 60)
        if moment == "in-stage":
            delay: float | None = None
            # The target stage first; any stage once it has not come for a few seconds
            # (with few jobs left it may never come again).
            any_stage_after = time.monotonic() + 5
            while time.monotonic() < give_up:
                for e in self._poll(50):
                    if e["type"] == "stage.started" and (
                        e.get("stage") == target or time.monotonic() > any_stage_after
                    ):
                        delay = self.rng.uniform(0.0, 0.5)
                if delay is not None:
                    time.sleep(delay)
                    return moment, next(iter(self.running.values()), target)
                if len(self.done) == len(self.job_ids):
                    return None
            return None
        if moment == "between-stages":
            while time.monotonic() < give_up:
                for e in self._poll(50):
                    if e["type"] == "stage.finished":
                        return moment, str(e.get("stage"))
                if len(self.done) == len(self.job_ids):
                    return None
            return None
        # during-write: a `.tmp-` object of a running job exists right now
        catch_until = min(give_up, time.monotonic() + 8)
        while time.monotonic() < catch_until:
            self._poll(1)
            if self.running and self._tmp_in_running_jobs():
                return moment, next(iter(self.running.values()))
            if len(self.done) == len(self.job_ids):
                return None
        while time.monotonic() < give_up:
            self._poll(50)
            if self.running:
                return "in-stage", next(iter(self.running.values()))
            if len(self.done) == len(self.job_ids):
                return None
        return None

    def _wait_all(self) -> None:
        while len(self.done) < len(self.job_ids) and time.monotonic() < self.deadline:
            self._poll(500)
            if self.worker is not None and not self.worker.alive():
                self._start_worker()  # not ours to lose: a worker that died on its own

    def _settle(self, http: Any) -> None:
        """After every job's final event, the stages after the result (search indexing)
        may still run: wait for them (within the deadline) before counting versions."""
        left = list(self.job_ids)
        while left and time.monotonic() < self.deadline:
            job = http.get(f"/v1/jobs/{left[0]}").json()
            if any(s["status"] in ("queued", "running") for s in job.get("stages", [])):
                time.sleep(0.2)
                if self.worker is not None and not self.worker.alive():
                    self._start_worker()
            else:
                left.pop(0)

    # ------------------------------------------------------------ verdict

    def _verify(self, http: Any) -> ChaosReport:
        rows = asyncio.run(self._db_facts())
        problems: list[str] = []
        succeeded = lost = duplicated = stuck = 0
        for job_id in self.job_ids:
            facts = rows[job_id]
            entries = self.redis.xrange(f"{self.settings.redis_prefix}:events:{job_id}") or []
            events = [json.loads(f[b"e"])["type"] for _, f in entries if f is not None]
            n_ok = events.count("job.succeeded")
            versions = facts["versions"]
            dup = n_ok > 1 or any(v != [1] for v in versions.values())
            if facts["tmp_uris"]:
                problems.append(f"{job_id}: recorded a temporary object {facts['tmp_uris']}")
            if facts["status"] in ("queued", "running") or facts["running_stages"]:
                stuck += 1
                problems.append(f"{job_id}: stuck {facts['status']} {facts['running_stages']}")
            elif dup:
                duplicated += 1
                problems.append(f"{job_id}: duplicated {n_ok} job.succeeded, versions {versions}")
            elif facts["status"] == "succeeded" and n_ok == 1 and len(versions) == len(STAGES):
                if http.get(f"/v1/jobs/{job_id}/result").status_code == 200:
                    succeeded += 1
                else:
                    lost += 1
                    problems.append(f"{job_id}: succeeded without a readable result")
            else:
                lost += 1
                problems.append(f"{job_id}: {facts['status']} ({facts['error']}), {n_ok} ok events")
        tmp_left = sum(1 for p in Path(self.settings.storage_root).rglob("*") if ".tmp-" in p.name)
        recoveries = sorted(k.recovered_s for k in self.kills if k.recovered_s is not None)
        return ChaosReport(
            jobs=len(self.job_ids),
            kills=len(self.kills),
            succeeded=succeeded,
            lost=lost,
            duplicated=duplicated,
            stuck=stuck,
            kills_by_moment=dict(Counter(k.moment for k in self.kills)),
            kills_by_stage=dict(Counter(str(k.stage) for k in self.kills)),
            tmp_leftovers=tmp_left,
            duration_s=time.monotonic() - self.t0,
            recovery_s_median=recoveries[len(recoveries) // 2] if recoveries else None,
            recovery_s_max=recoveries[-1] if recoveries else None,
            problems=problems,
            kill_log=self.kills,
        )

    async def _db_facts(self) -> dict[str, dict[str, Any]]:
        import asyncpg

        assert self.settings.database_url
        conn = await asyncpg.connect(self.settings.database_url)
        try:
            facts: dict[str, dict[str, Any]] = {}
            for job_id in self.job_ids:
                jid = uuid.UUID(job_id)
                job = await conn.fetchrow("SELECT * FROM jobs WHERE id = $1", jid)
                arts = await conn.fetch(
                    "SELECT stage, version, uri FROM artifacts WHERE job_id = $1 ORDER BY version",
                    jid,
                )
                running = await conn.fetch(
                    "SELECT stage FROM job_stages WHERE job_id = $1 AND status = 'running'", jid
                )
                versions: dict[str, list[int]] = {}
                for a in arts:
                    versions.setdefault(a["stage"], []).append(a["version"])
                facts[job_id] = {
                    "status": job["status"],
                    "error": job["error_message"],
                    "versions": versions,
                    "tmp_uris": [a["uri"] for a in arts if ".tmp-" in a["uri"]],
                    "running_stages": [r["stage"] for r in running],
                }
            return facts
        finally:
            await conn.close()


# ---------------------------------------------------------------- command line


def _reachable(url: str, default_port: int) -> bool:
    parts = up.urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or default_port), 0.5):
            return True
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=20)
    p.add_argument("--kills", type=int, default=100)
    p.add_argument("--minutes", type=float, default=10.0, help="deadline for the whole run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--audio", type=Path, default=DEFAULT_AUDIO)
    p.add_argument("--lease-ttl", type=float, default=4.0)
    p.add_argument(
        "--workers", type=int, default=1, help="worker processes (a job's stages in parallel)"
    )
    p.add_argument("--embedded", action="store_true", help="embedded PostgreSQL and Redis")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "chaos.json")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)

    pg = os.environ.get("SCRIBE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    rd = os.environ.get("SCRIBE_BENCH_REDIS", "redis://127.0.0.1:6379/0")
    run = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="scribe-chaos-"))
    db_name = f"scribe_chaos_{run}"
    use_servers = not args.embedded and _reachable(pg, 5432) and _reachable(rd, 6379)
    base = Settings(
        data_dir=tmp,
        redis_prefix=f"scribe-chaos-{run}",
        auth="off",  # the chaos run talks to its own gateway without API keys
        storage=StorageSettings(protocol="file", root=str(tmp / "artifacts")),
    )
    if use_servers:
        asyncio.run(_admin(pg, f'CREATE DATABASE "{db_name}"'))
        base = base.model_copy(
            update={
                "database_url": up.urlunsplit(up.urlsplit(pg)._replace(path=f"/{db_name}")),
                "redis_url": rd,
            }
        )
    settings = chaos_settings(base, lease_ttl_s=args.lease_ttl)
    chaos = Chaos(
        settings,
        audio=args.audio,
        jobs=args.jobs,
        kills=args.kills,
        seed=args.seed,
        workers=args.workers,
        worker_log=tmp / "worker.log",
        minutes=args.minutes,
        verbose=args.verbose,
    )
    try:
        report = chaos.run()
    finally:
        if use_servers:
            asyncio.run(_admin(pg, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
            import redis

            r = redis.Redis.from_url(rd)
            keys = list(r.scan_iter(f"{base.redis_prefix}*")) + list(
                r.scan_iter(f"autoclaim:{base.redis_prefix}*")
            )
            if keys:
                r.delete(*keys)
            r.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(report.table())
    for problem in report.problems:
        print("problem:", problem)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(asdict(report), indent=1, default=str))
    ok = report.lost == report.duplicated == report.stuck == 0 and report.succeeded == report.jobs
    return 0 if ok else 1


async def _admin(dsn: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


if __name__ == "__main__":
    raise SystemExit(main())
