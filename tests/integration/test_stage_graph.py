"""A stage declared here, and nowhere else, runs in a real job: the graph below (the default
one plus two stages after the result) is handed to a real gateway and worker process by
one setting, SCRIBE_STAGE_GRAPH, naming this module.

`shout` reads the merged result and writes it in capitals; `fragile` always fails. Both
run after the job has succeeded: the transcript is served before they are done, and
fragile's failure is reported on its stage without failing the job.

The same setting rules the requeue at a restart (cli/local.py): the stages it sends again
are the ones this graph says may run, its own stages included.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from pydantic import BaseModel

from cli.local import LocalSystem
from core.artifacts import JobParams, MeetingResult
from core.errors import StageFailed
from core.graph import DEFAULT_GRAPH, StageDecl, load_graph
from core.jobs import Job
from core.settings import Settings
from events.queue import queue_key, task_name
from stages.contract import StageInput, StageSpec
from storage.artifacts import StoredObject
from storage.db import create_pool, migrate
from storage.jobs import JobStore
from tests.databases import own_settings

# By its full name: the worker process imports it from the repository root.
MODULE = "tests.integration.test_stage_graph"


class Shouted(MeetingResult):
    """The merged result in capitals: an artifact of its own type, since the gateway finds
    the merged result by asking the graph which stage makes a MeetingResult."""


class Nothing(BaseModel):
    """What `fragile` would make, if it ever succeeded."""


async def _no_params(state: Any, job: Job) -> tuple[dict[str, Any], str | None]:
    return {"case": "upper"}, None


def _shout(si: StageInput) -> StoredObject:
    store = si.state.store
    merged = si.read(MeetingResult)  # by its type: the graph knows which stage made it
    for segment in merged.segments:
        segment.text = segment.text.upper()
    si.progress("shout", 1, 1)
    return store.put_json(f"{si.key_dir}/artifact.json", Shouted(**merged.model_dump()))


def _break(si: StageInput) -> StoredObject:
    raise StageFailed("fragile", "this stage always fails, on purpose")


SHOUT = StageSpec(_no_params, _shout)
FRAGILE = StageSpec(_no_params, _break)

GRAPH = DEFAULT_GRAPH.with_stage(
    StageDecl(
        "shout", {"en": "Shouting", "fr": "Cris"}, ("merge",), Shouted, f"{MODULE}:SHOUT",
        result=False,
    )
).with_stage(
    StageDecl(
        "fragile", {"en": "Failing", "fr": "Échec"}, ("merge",), Nothing, f"{MODULE}:FRAGILE",
        result=False,
    )
)  # fmt: skip


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
        assert listed[-2]["labels"] == {"en": "Shouting", "fr": "Cris"}
        assert listed[-2]["label"] == "Shouting"

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
            # Every stage after the result has ended: fragile failed, the others
            # (shout, embed, summarize) succeeded.
            others = [v for k, v in states.items() if k != "fragile"]
            return states["fragile"] == "failed" and all(v == "succeeded" for v in others)

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


def queued_stages(settings: Settings) -> list[tuple[str, list[str]]]:
    """(task, args) of every message in the stage queue, oldest first."""
    assert settings.redis_url
    r = redis.Redis.from_url(settings.redis_url)
    try:
        entries: Any = r.xrange(queue_key(settings))
    finally:
        r.close()
    messages = [json.loads(fields[b"data"]) for _, fields in entries]
    return [(m["task_name"], m["args"]) for m in messages]


def test_a_restart_requeues_the_stages_of_the_configured_graph(
    settings: Settings, pg_admin_dsn: str, tmp_path: Path
) -> None:
    """A job whose result is done and whose two stages of this graph never got their
    message (the last run was stopped between reading and acknowledging them): the next
    start on the data directory sends them, because it asks the graph the settings name."""
    with own_settings(
        settings, pg_admin_dsn, tmp_path, "graph-restart", stage_graph=f"{MODULE}:GRAPH"
    ) as own:
        assert load_graph(own.stage_graph).names == GRAPH.names
        job_id = str(uuid.uuid4())

        async def a_job_waiting_for_its_own_stages() -> None:
            assert own.database_url
            pool = await create_pool(own.database_url, max_size=1)
            try:
                await migrate(pool)
                await JobStore(pool, GRAPH).create_job(
                    job_id=job_id,
                    filename="a.wav",
                    content_type=None,
                    size_bytes=1,
                    upload_uri=f"file:///nowhere/{job_id}",
                    upload_sha256="0" * 64,
                    params=JobParams(),
                )
                async with pool.acquire() as conn:
                    # Every stage of the default graph done, search indexing included:
                    # only this graph's own stages are left, queued.
                    await conn.execute(
                        "UPDATE job_stages SET status = 'succeeded' WHERE job_id = $1"
                        " AND stage = ANY($2::text[])",
                        uuid.UUID(job_id),
                        list(DEFAULT_GRAPH.names),
                    )
                    await conn.execute(
                        "UPDATE jobs SET status = 'succeeded', finished_at = now() WHERE id = $1",
                        uuid.UUID(job_id),
                    )
            finally:
                await pool.close()

        asyncio.run(a_job_waiting_for_its_own_stages())
        assert queued_stages(own) == []

        # What `LocalSystem.start` does first on the data directory's own servers when no
        # other process runs workers on them (the embedded servers are not started here:
        # the test's own database and Redis stand in for them).
        system = LocalSystem(own, worker=False, gateway=False)
        system.servers.started_redis = True
        system._prepare_database(end_leases=True)

        assert queued_stages(own) == [
            (task_name("shout"), [job_id]),
            (task_name("fragile"), [job_id]),
        ]
