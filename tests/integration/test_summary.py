"""Summaries and answers end to end: a real job through the session's gateway and worker
process, the summarize stage after the result with the embedded llama.cpp and the small
packaged SmolLM2 model (tests/conftest.py), GET /v1/jobs/{id}/summary with every citation
a moment of the transcript, the stage on the job's event stream, a rename running it again
with the owners following, and POST /v1/ask whole and streamed, with `scribe summary` and
`scribe ask` reading them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli_env import cli_env
from tests.integration.conftest import ScribeAPI

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def summary_done(api: ScribeAPI, job_id: str, timeout_s: float = 240) -> dict[str, Any]:
    """GET summary once the summarize stage has finished."""
    deadline = time.monotonic() + timeout_s
    while True:
        resp = api.http.get(f"/v1/jobs/{job_id}/summary")
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        if body["status"] in ("succeeded", "failed"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.5)


def check_citations(api: ScribeAPI, job_id: str, summary: dict[str, Any]) -> int:
    """Every cited moment is a segment of the transcript as it reads now; returns how many."""
    segments = api.result(job_id)["segments"]
    names = {s["id"]: s["name"] or s["id"] for s in api.result(job_id)["speakers"]}
    count = 0
    for item in [*summary["summary"], *summary["decisions"], *summary["action_items"]]:
        assert item["citations"], item  # nothing uncited is shown as a fact
        for c in item["citations"]:
            seg = segments[c["segment"]]
            assert (c["start"], c["end"]) == (seg["start"], seg["end"])
            assert c["speaker"] == names[seg["speaker"]]
            count += 1
    return count


@pytest.fixture(scope="module")
def meeting(api: ScribeAPI, audio_dir: Path) -> str:
    job_id, events = api.run(audio_dir / "jfk" / "jfk.flac", language="en")
    assert events[-1].type == "job.succeeded", events[-1]
    return job_id


def test_a_job_gets_a_summary_citing_its_moments(api: ScribeAPI, meeting: str) -> None:
    body = summary_done(api, meeting)
    assert body["status"] == "succeeded", body
    summary = body["summary"]
    assert summary["language"] == "en" and summary["model"].startswith("smollm2-135m@")
    assert check_citations(api, meeting, summary) >= 1
    job = api.job(meeting)
    assert job["status"] == "succeeded"
    stages = list(api.stage_states(job))
    assert stages.index("summarize") > stages.index("merge")
    # The stage is on the job's event stream like any other, after the result.
    text = api.http.get(f"/v1/jobs/{meeting}/events").text
    seen = [
        (json.loads(line[5:])["type"], json.loads(line[5:]).get("stage"))
        for line in text.splitlines()
        if line.startswith("data:")
    ]
    after = seen[seen.index(("job.succeeded", None)) :]
    assert ("stage.started", "summarize") in after and ("stage.finished", "summarize") in after


def test_a_rename_runs_the_summary_again(api: ScribeAPI, meeting: str) -> None:
    before = next(a for a in api.artifacts(meeting) if a["stage"] == "summarize")
    label = api.result(meeting)["speakers"][0]["id"]
    resp = api.http.patch(f"/v1/jobs/{meeting}/speakers/{label}", json={"name": "John Kennedy"})
    assert resp.status_code == 200, resp.text
    deadline = time.monotonic() + 240
    while True:
        records = [a for a in api.artifacts(meeting) if a["stage"] == "summarize"]
        if any(a["id"] != before["id"] for a in records):
            break
        assert time.monotonic() < deadline, records
        time.sleep(0.5)
    body = summary_done(api, meeting)
    assert body["status"] == "succeeded"
    check_citations(api, meeting, body["summary"])  # speakers: "John Kennedy" now
    for item in body["summary"]["action_items"]:
        if item["owner_speaker"] == label:
            assert item["owner"] == "John Kennedy"


def test_ask_answers_from_the_tenants_moments_or_declines(api: ScribeAPI, meeting: str) -> None:
    summary_done(api, meeting)
    question = {"question": "What should you ask of your country?", "job_id": meeting}
    resp = api.http.post("/v1/ask", json=question, timeout=120)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    segments = api.result(meeting)["segments"]
    if body["declined"]:
        assert body["citations"] == [] and body["sentences"] == []
    else:
        assert body["citations"] and all(s["citations"] for s in body["sentences"])
    for c in body["citations"]:
        assert c["job_id"] == meeting and 0 <= c["segment"] < len(segments)
        assert c["start"] >= segments[c["segment"]]["start"] - 0.01
    # Streamed: the draft piece by piece, then the checked answer, the same as above.
    with api.http.stream("POST", "/v1/ask", json={**question, "stream": True}, timeout=120) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = list(r.iter_lines())
    events = [line for line in lines if line.startswith("event:")]
    assert events[-1] == "event: answer" and events.count("event: answer") == 1
    assert "event: delta" in events
    streamed = json.loads(next(x for x in reversed(lines) if x.startswith("data:"))[5:])
    assert streamed["declined"] == body["declined"] and streamed["answer"] == body["answer"]


def test_bad_questions_get_a_422_that_says_why(api: ScribeAPI) -> None:
    for question, says in (("", "empty"), ("   ", "empty"), ("x" * 501, "under 500")):
        resp = api.http.post("/v1/ask", json={"question": question})
        assert resp.status_code == 422 and says in resp.json()["error"]["message"], resp.text
    resp = api.http.post("/v1/ask", json={})
    assert resp.status_code == 422 and "question" in resp.json()["error"]["message"]


def test_the_cli_prints_the_summary_and_an_answer(api: ScribeAPI, meeting: str) -> None:
    summary_done(api, meeting)
    env = cli_env(COLUMNS="200")
    cmd = [sys.executable, "-m", "cli.main"]
    server = ["--server", api.system.url]

    def scribe(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cmd, *args, *server], env=env, cwd=REPO, capture_output=True, text=True, timeout=180
        )

    out = scribe("summary", meeting, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "succeeded"
    shown = scribe("summary", meeting)
    assert shown.returncode == 0 and "Summary" in shown.stdout, shown.stderr
    assert "Action items" in shown.stdout
    asked = scribe("ask", "What should you ask of your country?", "--job", meeting, "--json")
    assert asked.returncode == 0, asked.stderr
    assert "citations" in json.loads(asked.stdout)
