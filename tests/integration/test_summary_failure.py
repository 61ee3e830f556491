"""A language model server that never answers, behind a real gateway and worker: the
summarize stage fails with a sentence naming the server and the wait, the job stays
succeeded with its transcript, and GET summary reports the failure."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from cli.local import LocalSystem
from core.settings import LLMSettings, Settings
from gateway.services import Services
from tests.databases import own_settings
from tests.integration.stored_jobs import finished_job
from tests.llm_server import silent_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def silent_llm_system(
    settings: Settings, pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalSystem, str]]:
    data_dir = tmp_path_factory.mktemp("scribe-llm-silent")
    with silent_server() as url:
        llm = LLMSettings(engine="openai", url=url, model="any", timeout_s=2)
        with own_settings(settings, pg_admin_dsn, data_dir, "llm-silent", llm=llm) as own:
            system = LocalSystem(own, worker_log=data_dir / "worker.log")
            system.start()
            try:
                yield system, url
            finally:
                system.stop()


def test_a_slow_model_server_fails_the_stage_not_the_job(
    silent_llm_system: tuple[LocalSystem, str],
) -> None:
    system, url = silent_llm_system

    async def stored_job() -> str:
        svc = await Services.connect(system.settings)
        try:
            return (await finished_job(svc)).id
        finally:
            await svc.close()

    job_id = asyncio.run(stored_job())
    with httpx.Client(base_url=system.url, timeout=30) as http:
        # A job made before summaries existed: reindex sends embed, and summarize after it.
        assert job_id in http.post("/v1/search/reindex").json()["job_ids"]
        deadline = time.monotonic() + 180
        while True:
            body = http.get(f"/v1/jobs/{job_id}/summary").json()
            if body["status"] in ("succeeded", "failed"):
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.5)
        assert body["status"] == "failed" and body["summary"] is None
        assert url in body["error"] and "did not answer within 2 s" in body["error"], body
        job = http.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "succeeded" and job["error"] is None
        stages = {s["stage"]: s for s in job["stages"]}
        assert stages["embed"]["status"] == "succeeded"
        assert stages["summarize"]["error"].startswith("no summary:")
        assert http.get(f"/v1/jobs/{job_id}/result").status_code == 200
