"""A whole Scribe for the end-to-end tests: real gateway (uvicorn), real worker process,
real PostgreSQL, Redis, ffmpeg and models; started once per session (models load once).

The system gets its own database, Redis prefix and storage root, derived from the session
`settings`: other integration modules kick jobs on the session prefix with no worker
running, and a real worker must neither pick those up nor see their speakers.

Helpers talk HTTP only (`ScribeAPI`): every request has an httpx timeout and every wait a
deadline, so a hang fails the test instead of blocking CI (pytest-timeout is not installed).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.local import LocalSystem
from core.settings import Settings
from tests.databases import own_settings

TERMINAL = ("job.succeeded", "job.failed")
LOG_TAIL_LINES = 60
_worker_log: Path | None = None  # set by the `worker_log` fixture, read by the report hook


def log_tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    if path is None or not path.exists():
        return "(no worker log)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:]) or "(worker log is empty)"


# ---------------------------------------------------------------- SSE


@dataclass
class SSEvent:
    """One Server-Sent Event as it came over the wire."""

    id: str | None
    event: str | None
    data: dict[str, Any]

    @property
    def type(self) -> str:
        return self.event or ""


def parse_sse_lines(lines: Iterator[str]) -> Iterator[SSEvent]:
    """Blocks of `field: value` lines separated by a blank line; `:` lines are comments."""
    fields: dict[str, list[str]] = {}
    for line in lines:
        if line == "":
            if fields:
                data = "\n".join(fields.get("data", []))
                yield SSEvent(
                    id=fields.get("id", [None])[-1],
                    event=fields.get("event", [None])[-1],
                    data=json.loads(data) if data else {},
                )
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name, []).append(value[1:] if value.startswith(" ") else value)
    if fields:  # a last block without its blank line
        data = "\n".join(fields.get("data", []))
        yield SSEvent(
            id=fields.get("id", [None])[-1],
            event=fields.get("event", [None])[-1],
            data=json.loads(data) if data else {},
        )


# ---------------------------------------------------------------- the API client


@dataclass
class ScribeAPI:
    system: LocalSystem
    worker_log: Path
    http: httpx.Client = field(init=False)
    # The first job this worker ran to success: its stages paid for loading the models.
    first_job: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.system.url, timeout=httpx.Timeout(30.0, read=60.0))

    def close(self) -> None:
        self.http.close()

    def _check_worker(self) -> None:
        worker = self.system.worker
        if worker is not None and not worker.alive():
            pytest.fail(f"the worker process died; its log:\n{log_tail(self.worker_log)}")

    # ------------------------------------------------------------ jobs

    def upload(self, source: Path | bytes, filename: str | None = None, **params: object) -> str:
        data = source.read_bytes() if isinstance(source, Path) else source
        name = filename or (source.name if isinstance(source, Path) else "upload.bin")
        form = {k: str(v) for k, v in params.items() if v is not None}
        resp = self.http.post(
            "/v1/jobs", files={"file": (name, data, "application/octet-stream")}, data=form
        )
        assert resp.status_code == 202, resp.text
        body = resp.json()
        assert body["status"] == "queued"
        return str(body["id"])

    def events(
        self, job_id: str, *, after: str | None = None, timeout_s: float = 240.0
    ) -> list[SSEvent]:
        """Follow the job's SSE stream until a terminal event (or the stream ends)."""
        deadline = time.monotonic() + timeout_s
        params = {"after": after} if after else None
        got: list[SSEvent] = []
        # The server pings every 15 s, so a read timeout above that only fires on silence;
        # the deadline check below catches a job that never ends.
        timeout = httpx.Timeout(30.0, read=30.0)
        with self.http.stream(
            "GET", f"/v1/jobs/{job_id}/events", params=params, timeout=timeout
        ) as resp:
            assert resp.status_code == 200, resp.read().decode()
            assert resp.headers["content-type"].startswith("text/event-stream")

            def lines() -> Iterator[str]:
                for line in resp.iter_lines():
                    if time.monotonic() > deadline:
                        self._check_worker()
                        seen = [e.type for e in got]
                        pytest.fail(f"job {job_id} did not finish in {timeout_s:.0f} s: {seen}")
                    yield line

            for event in parse_sse_lines(lines()):
                got.append(event)
                if event.type in TERMINAL:
                    break
                self._check_worker()
        if got and got[-1].type == "job.succeeded":
            self.settle(job_id, deadline)
        return got

    def settle(self, job_id: str, deadline: float) -> dict[str, Any]:
        """The job once the stages after its result (search indexing) are done too, so a
        test that goes on to look at its artifacts or replay it sees a job at rest."""
        while True:
            job = self.job(job_id)
            if not any(s["status"] in ("queued", "running") for s in job["stages"]):
                return job
            if time.monotonic() > deadline:
                self._check_worker()
                pytest.fail(f"job {job_id}: stages after the result did not finish: {job}")
            time.sleep(0.1)

    def last_event_id(self, job_id: str) -> str:
        """The id of the newest event of a finished job (its stream is history only)."""
        job = self.job(job_id)
        assert job["status"] in ("succeeded", "failed"), job["status"]
        # A finished job's stream is its whole history, and ends: read all of it, the
        # events of stages after the result (which follow job.succeeded) included.
        resp = self.http.get(f"/v1/jobs/{job_id}/events", timeout=30)
        assert resp.status_code == 200, resp.text
        history = list(parse_sse_lines(iter(resp.text.splitlines())))
        assert history and history[-1].id
        return history[-1].id

    def run(
        self,
        source: Path | bytes,
        filename: str | None = None,
        *,
        timeout_s: float = 240.0,
        **params: object,
    ) -> tuple[str, list[SSEvent]]:
        """Upload and follow to the end; returns (job id, every event from job.queued on)."""
        job_id = self.upload(source, filename, **params)
        events = self.events(job_id, timeout_s=timeout_s)
        if events and events[-1].type == "job.succeeded" and self.first_job is None:
            self.first_job = self.job(job_id)
        return job_id, events

    def job(self, job_id: str) -> dict[str, Any]:
        resp = self.http.get(f"/v1/jobs/{job_id}")
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def result(self, job_id: str) -> dict[str, Any]:
        resp = self.http.get(f"/v1/jobs/{job_id}/result")
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def result_text(self, job_id: str, fmt: str) -> httpx.Response:
        resp = self.http.get(f"/v1/jobs/{job_id}/result", params={"format": fmt})
        assert resp.status_code == 200, resp.text
        return resp

    @staticmethod
    def words_of(result: dict[str, Any]) -> list[dict[str, Any]]:
        return [w for seg in result["segments"] for w in seg["words"]]

    @staticmethod
    def stage_states(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {s["stage"]: s for s in job["stages"]}

    def artifacts(self, job_id: str) -> list[dict[str, Any]]:
        resp = self.http.get(f"/v1/jobs/{job_id}/artifacts")
        assert resp.status_code == 200, resp.text
        body: list[dict[str, Any]] = resp.json()
        return body


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def system_settings(
    settings: Settings, pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """The session settings with a database, Redis prefix and storage root of its own."""
    data_dir = tmp_path_factory.mktemp("scribe-system")
    with own_settings(settings, pg_admin_dsn, data_dir, "sys") as own:
        yield own


@pytest.fixture(scope="session")
def worker_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    global _worker_log
    _worker_log = tmp_path_factory.mktemp("scribe-logs") / "worker.log"
    return _worker_log


@pytest.fixture(scope="session")
def system(system_settings: Settings, worker_log: Path) -> Iterator[LocalSystem]:
    """Gateway + one worker process, shared by the whole session."""
    local = LocalSystem(system_settings, worker_log=worker_log)
    try:
        local.start()
    except BaseException:
        print(f"worker log (tail):\n{log_tail(worker_log)}")
        raise
    try:
        yield local
    finally:
        worker = local.worker.proc if local.worker is not None else None
        try:
            local.stop()
        finally:
            if worker is not None:
                # The worker runs in its own session (start_new_session), so its process
                # group is ours alone. LocalSystem.stop() kills only the taskiq parent when
                # it does not exit in time; a child busy in a stage then lives on as an
                # orphan that keeps consuming the queue. End what is left of the group.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(worker.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def api(system: LocalSystem, worker_log: Path) -> Iterator[ScribeAPI]:
    client = ScribeAPI(system, worker_log)
    yield client
    client.close()


@pytest.fixture(scope="session")
def pyannote_sample() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pyannote.audio")
    assert spec is not None and spec.submodule_search_locations
    sample = Path(next(iter(spec.submodule_search_locations))) / "sample"
    if not (sample / "sample.wav").exists():
        pytest.fail("pyannote.audio's sample.wav is not installed", pytrace=False)
    return sample


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test that used the system shows the worker log's tail in its report."""
    report = yield
    if report.failed and "system" in getattr(item, "fixturenames", ()):
        report.sections.append(("worker log (tail)", log_tail(_worker_log)))
    return report
