"""Replaying one stage of a finished job: only what changed is computed again.

Artifact keys hash a stage's inputs, parameters and model, so a replay with other
parameters makes a new version beside the old one, a stage whose inputs did not change is
reused, and replaying with the old parameters again finds the old artifact.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from core.graph import DEFAULT_GRAPH

if TYPE_CHECKING:  # the helpers arrive as fixtures; conftest is not imported at run time
    from tests.integration.conftest import ScribeAPI, SSEvent

pytestmark = pytest.mark.slow


def replay(api: ScribeAPI, job_id: str, stage: str, params: dict[str, Any] | None) -> list[SSEvent]:
    """Replay `stage` and follow the job to its end; returns the replay's events only."""
    after = api.last_event_id(job_id)
    body = {"params": params} if params is not None else {}
    resp = api.http.post(f"/v1/jobs/{job_id}/stages/{stage}/replay", json=body)
    assert resp.status_code == 202, resp.text
    assert resp.json()["id"] == job_id and resp.json()["status"] == "queued"
    assert resp.headers["location"].endswith(f"/v1/jobs/{job_id}")
    events = api.events(job_id, after=after, timeout_s=240)
    assert events[0].type == "job.queued" and events[0].data["stage"] == stage, events[0]
    assert events[-1].type == "job.succeeded", [e.data for e in events[-3:]]
    return events


def finished(events: list[SSEvent]) -> dict[str, SSEvent]:
    return {e.data["stage"]: e for e in events if e.type == "stage.finished"}


def started(events: list[SSEvent]) -> list[str]:
    return [e.data["stage"] for e in events if e.type == "stage.started"]


def by_stage(artifacts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for a in artifacts:
        out.setdefault(a["stage"], []).append(a)
    for versions in out.values():
        versions.sort(key=lambda a: a["version"])
    return out


def test_replay_diarize_and_identify(api: ScribeAPI, pyannote_sample: Path) -> None:
    job_id, events = api.run(pyannote_sample / "sample.wav", num_speakers=2, timeout_s=240)
    assert events[-1].type == "job.succeeded", [e.data for e in events[-3:]]
    assert len(api.result(job_id)["speakers"]) == 2
    original = by_stage(api.artifacts(job_id))
    assert {s: [a["version"] for a in v] for s, v in original.items()} == {
        s: [1] for s in DEFAULT_GRAPH.names
    }
    assert original["diarize"][0]["params"]["num_speakers"] == 2

    # ------------------------------------------------ diarize again, as one speaker
    events = replay(api, job_id, "diarize", {"num_speakers": 1})
    assert "decode" not in started(events), "decode ran again although its input is the same"
    # Only what depends on diarize runs again: transcribe does not read it.
    assert started(events) == ["diarize", "identify", "merge"]
    done = finished(events)
    assert done["diarize"].data["reused"] is False
    assert done["identify"].data["reused"] is False  # new diarization, new clusters
    assert done["merge"].data["reused"] is False

    after = by_stage(api.artifacts(job_id))
    assert after["decode"] == original["decode"], "decode must keep its one artifact"
    assert after["transcribe"] == original["transcribe"]
    assert [a["version"] for a in after["diarize"]] == [1, 2]
    v1, v2 = after["diarize"]
    assert v1 == original["diarize"][0], "the first diarization is kept as it was"
    assert v2["params"]["num_speakers"] == 1 and v2["key"] != v1["key"]
    assert v2["uri"] != v1["uri"] and v2["inputs"] == v1["inputs"]
    assert [a["version"] for a in after["identify"]] == [1, 2]
    assert after["identify"][1]["inputs"] == [v2["id"]]

    job = api.job(job_id)
    states = api.stage_states(job)
    assert job["status"] == "succeeded" and job["params"]["num_speakers"] == 1
    assert states["diarize"]["artifact_id"] == v2["id"]
    assert states["decode"]["artifact_id"] == original["decode"][0]["id"]
    assert states["transcribe"]["artifact_id"] == original["transcribe"][0]["id"]

    result = api.result(job_id)
    assert [s["id"] for s in result["speakers"]] == ["S1"], result["speakers"]
    assert {w["speaker"] for w in api.words_of(result)} == {"S1"}

    # ------------------------------------------------ identify again, nothing changed
    identify_before = after["identify"]
    events = replay(api, job_id, "identify", None)
    assert started(events) == ["identify", "merge"]
    done = finished(events)
    assert done["identify"].data["reused"] is True
    assert done["merge"].data["reused"] is True
    again = by_stage(api.artifacts(job_id))
    assert again["identify"] == identify_before, "a reused stage must not add a version"
    assert len(again["merge"]) == 2
    assert len(api.result(job_id)["speakers"]) == 1

    # ------------------------------------------------ back to two speakers: version 1 again
    events = replay(api, job_id, "diarize", {"num_speakers": 2})
    assert started(events) == ["diarize", "identify", "merge"]
    done = finished(events)
    assert all(done[s].data["reused"] is True for s in done), {
        s: e.data["reused"] for s, e in done.items()
    }
    final = by_stage(api.artifacts(job_id))
    assert [a["version"] for a in final["diarize"]] == [1, 2], "no version 3"
    assert final == again
    states = api.stage_states(api.job(job_id))
    assert states["diarize"]["artifact_id"] == original["diarize"][0]["id"]
    assert states["merge"]["artifact_id"] == original["merge"][0]["id"]
    result = api.result(job_id)
    assert len(result["speakers"]) == 2
    assert result["provenance"]["diarize"]["sha256"] == original["diarize"][0]["sha256"]


def test_replay_rejects_unknown_stage_and_bad_params(api: ScribeAPI, audio_dir: Path) -> None:
    job_id, events = api.run(audio_dir / "misc" / "english.wav")
    assert events[-1].type == "job.succeeded", [e.data for e in events[-3:]]
    unknown = api.http.post(f"/v1/jobs/{job_id}/stages/translate/replay", json={})
    assert unknown.status_code == 404 and "diarize" in unknown.json()["error"]["message"]
    bad = api.http.post(
        f"/v1/jobs/{job_id}/stages/diarize/replay", json={"params": {"num_speakers": 0}}
    )
    assert bad.status_code == 422 and "num_speakers" in bad.json()["error"]["message"]
    # Nothing was queued by the refused requests.
    job = api.job(job_id)
    assert job["status"] == "succeeded" and job["params"].get("num_speakers") is None

    # ------------------------------------------------ transcribe: merge follows, not diarize
    events = replay(api, job_id, "transcribe", None)
    assert started(events) == ["transcribe", "merge"]
    assert all(e.data["reused"] is True for e in finished(events).values())
