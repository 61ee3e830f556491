"""A stage declared here, and nowhere else, runs in a real job: the graph below (the default
one plus two stages after the result) is handed to a real gateway and worker process by
one setting, SCRIBE_STAGE_GRAPH, naming this module.

`shout` reads the merged result and writes it in capitals; `fragile` always fails. Both
run after the job has succeeded: the transcript is served before they are done, and
fragile's failure is reported on its stage without failing the job.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.local import LocalSystem
from core.artifacts import MeetingResult
from core.errors import StageFailed
from core.graph import DEFAULT_GRAPH, StageDecl
from core.jobs import Job
from core.settings import Settings
from stages.contract import StageInput, StageSpec
from storage.artifacts import StoredObject
from tests.databases import own_settings

# By its full name: the worker process imports it from the repository root.
MODULE = "tests.integration.test_stage_graph"


async def _no_params(state: Any, job: Job) -> tuple[dict[str, Any], str | None]:
    return {"case": "upper"}, None


def _shout(si: StageInput) -> StoredObject:
    store = si.state.store
    merged = store.get_json(store.key_of(si.inputs["merge"].uri), MeetingResult)
    for segment in merged.segments:
        segment.text = segment.text.upper()
    si.progress("shout", 1, 1)
    return store.put_json(f"{si.key_dir}/artifact.json", merged)


def _break(si: StageInput) -> StoredObject:
    raise StageFailed("fragile", "this stage always fails, on purpose")


SHOUT = StageSpec(_no_params, _shout)
FRAGILE = StageSpec(_no_params, _break)

GRAPH = DEFAULT_GRAPH.with_stage(
    StageDecl("shout", "Shouting", ("merge",), MeetingResult, f"{MODULE}:SHOUT", result=False)
).with_stage(
    StageDecl("fragile", "Failing", ("merge",), MeetingResult, f"{MODULE}:FRAGILE", result=False)
)


@pytest.fixture(scope="module")
def graph_system(
    settings: Settings, pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalSystem]:
    data_dir = tmp_path_factory.mktemp("scribe-graph")
    with own_settings(
        settings, pg_admin_dsn, data_dir, "graph", stage_graph=f"{MODULE}:GRAPH"
    ) as own:
        system = LocalSystem(own, worker_log=data_dir / "worker.log")
        system.start()
        try:
            yield system
        finally:
            system.stop()


def wait_for(http: httpx.Client, job_id: str, done: Any, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job: dict[str, Any] = http.get(f"/v1/jobs/{job_id}").json()
        if done(job):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


@pytest.mark.slow
def test_a_stage_declared_in_a_test_runs_after_the_result(
    graph_system: LocalSystem, pyannote_sample: Path
) -> None:
    with httpx.Client(base_url=graph_system.url, timeout=30) as http:
        # The API's stage list is the graph's.
        listed = http.get("/v1/stages").json()
        assert [s["name"] for s in listed] == list(GRAPH.names)
        assert [s["result"] for s in listed][-2:] == [False, False]

        with open(pyannote_sample / "sample.wav", "rb") as f:
            resp = http.post("/v1/jobs", files={"file": ("sample.wav", f, "audio/wav")})
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["id"]
        job = wait_for(http, job_id, lambda j: j["status"] in ("succeeded", "failed"), 300)
        assert job["status"] == "succeeded", job
        assert [s["stage"] for s in job["stages"]] == list(GRAPH.names)
        result = http.get(f"/v1/jobs/{job_id}/result").json()

        def after_result_done(j: dict[str, Any]) -> bool:
            states: dict[str, str] = {s["stage"]: s["status"] for s in j["stages"]}
            return states["shout"] == "succeeded" and states["fragile"] == "failed"

        job = wait_for(http, job_id, after_result_done, 60)
        assert job["status"] == "succeeded" and job["error"] is None
        fragile = next(s for s in job["stages"] if s["stage"] == "fragile")
        assert fragile["error"] == "this stage always fails, on purpose"

        artifacts = {a["stage"]: a for a in http.get(f"/v1/jobs/{job_id}/artifacts").json()}
        assert set(artifacts) == set(GRAPH.names) - {"fragile"}
        merge_id = artifacts["merge"]["id"]
        assert artifacts["shout"]["inputs"] == [merge_id]

        # Events: the job succeeded, then the stages after the result ran and said so.
        body = http.get(f"/v1/jobs/{job_id}/events").text
        lines = [ln.removeprefix("event: ") for ln in body.splitlines() if ln.startswith("event:")]
        succeeded = lines.index("job.succeeded")
        assert "stage.failed" in lines[succeeded:] and "stage.finished" in lines[succeeded:]
        assert "job.failed" not in lines
        assert result["segments"], result
