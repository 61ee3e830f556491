"""POST/GET /v1/jobs/{id}/corrections (reassign, fix_text) and GET /v1/metrics/accuracy,
on jobs built directly in the stores (no worker): tests/integration/stored_jobs.py."""

from __future__ import annotations

import uuid

import httpx

from core.artifacts import Identification, SpeakerMatch
from gateway.services import Services
from tests.integration import test_corrections_api as base
from tests.integration.stored_jobs import finished_job, record_artifact
from tests.integration.test_corrections_api import code

# The same module-scoped fixtures (a Services connection and an ASGI client).
services = base.services
client = base.client


async def test_reassign_and_fix_text_apply_on_read(
    client: httpx.AsyncClient, services: Services
) -> None:
    job = await finished_job(services)
    before = (await client.get(f"/v1/jobs/{job.id}/result")).json()
    resp = await client.post(
        f"/v1/jobs/{job.id}/corrections", json={"kind": "reassign", "segment": 1, "speaker": "S1"}
    )
    assert resp.status_code == 201, resp.text
    payload = {"segment": 1, "speaker": "S1", "merge_sha256": job.merge_sha256}
    assert resp.json()["payload"] == payload
    resp = await client.post(
        f"/v1/jobs/{job.id}/corrections",
        json={"kind": "fix_text", "segment": 2, "word": 0, "text": "Goodbye."},
    )
    assert resp.status_code == 201, resp.text
    result = (await client.get(f"/v1/jobs/{job.id}/result")).json()
    assert [(s["speaker"], s["text"]) for s in result["segments"]] == [
        ("S1", "Hello."),
        ("S1", "Hi."),
        ("S1", "Goodbye."),
    ]
    txt = (await client.get(f"/v1/jobs/{job.id}/result", params={"format": "txt"})).text
    assert "Goodbye." in txt and "Bye." not in txt.replace("Goodbye.", "")
    listed = (await client.get(f"/v1/jobs/{job.id}/corrections")).json()
    assert [c["kind"] for c in listed] == ["reassign", "fix_text"]
    # The merged artifact itself is untouched.
    merge = await services.records.current_artifact(job.id, "merge")
    assert merge is not None and merge.sha256 == job.merge_sha256
    assert before["segments"][1]["speaker"] == "S2"


async def test_bad_corrections_are_422(client: httpx.AsyncClient, services: Services) -> None:
    job = await finished_job(services)
    url = f"/v1/jobs/{job.id}/corrections"
    for body in (
        {"kind": "reassign", "segment": 3, "speaker": "S1"},
        {"kind": "reassign", "segment": 0, "speaker": "S1", "word_start": 0, "word_end": 2},
        {"kind": "reassign", "segment": 0, "speaker": "S1", "word_start": 0},
        {"kind": "reassign", "segment": -1, "speaker": "S1"},
        {"kind": "fix_text", "segment": 0, "word": 1, "text": "x"},
        {"kind": "fix_text", "segment": 0, "text": "   "},
        {"kind": "fix_text", "segment": 0, "text": "x", "extra": 1},
        {"kind": "delete_everything", "segment": 0},
    ):
        resp = await client.post(url, json=body)
        assert resp.status_code == 422, (body, resp.text)
    assert (await client.get(url)).json() == []
    failed = await finished_job(services, succeed=False)
    body = {"kind": "reassign", "segment": 0, "speaker": "S1"}
    resp = await client.post(f"/v1/jobs/{failed.id}/corrections", json=body)
    assert code(resp) == (409, "conflict")
    missing = f"/v1/jobs/{uuid.uuid4()}/corrections"
    resp = await client.post(missing, json={"kind": "reassign", "segment": 0, "speaker": "S1"})
    assert resp.status_code == 404


async def test_accuracy_metrics_count_confirmations_and_corrections(
    client: httpx.AsyncClient, services: Services
) -> None:
    model = f"metrics-encoder@{uuid.uuid4().hex[:8]}"
    for renames in ((("S1", "Alice"), ("S2", "Carol")), (("S1", "Bob"),)):
        job = await finished_job(services)
        ident = Identification(
            threshold=0.6,
            embedding_model=model,
            matches=[
                SpeakerMatch(label="S1", speaker_id="vp-alice", name="Alice", score=0.9),
                SpeakerMatch(label="S2", score=0.2),
            ],
        )
        await record_artifact(services, job.id, "identify", "k4", ident, model=model)
        for label, name in renames:
            resp = await client.patch(f"/v1/jobs/{job.id}/speakers/{label}", json={"name": name})
            assert resp.status_code == 200, resp.text
    resp = await client.get("/v1/metrics/accuracy")
    assert resp.status_code == 200, resp.text
    mine = [m for m in resp.json() if m["embedding_model"] == model]
    assert mine == [
        {
            "embedding_model": model,
            "renames": 3,
            "confirmed": 1,
            "corrected_wrong_name": 1,
            "corrected_unnamed": 1,
            "confirmation_rate": 0.5,
        }
    ]


async def test_voiceprints_of_another_model_are_listed_stale(
    client: httpx.AsyncClient, services: Services
) -> None:
    current = f"current-encoder@{uuid.uuid4().hex[:8]}"
    job = await finished_job(services)
    ident = Identification(threshold=0.6, embedding_model=current, matches=[])
    await record_artifact(services, job.id, "identify", "k5", ident, model=current)
    old = await services.speakers.create_speaker(
        name="Old Print", model="older-encoder@1", embedding=[1.0, 0.0], clip_uris=[]
    )
    new = await services.speakers.create_speaker(
        name="New Print", model=current, embedding=[1.0, 0.0], clip_uris=[]
    )
    listed = {s["id"]: s["stale"] for s in (await client.get("/v1/speakers")).json()}
    assert listed[old.id] is True and listed[new.id] is False


async def test_segment_corrections_stay_with_the_merged_result_they_were_made_on(
    client: httpx.AsyncClient, services: Services
) -> None:
    """A replay that merges again gives other segments: text and speaker corrections made
    on the earlier result (by segment index) no longer apply; a rename still does."""
    from core.artifacts import MeetingResult, ResultSegment

    job = await finished_job(services)
    url = f"/v1/jobs/{job.id}/corrections"
    fix = {"kind": "fix_text", "segment": 1, "text": "Hi there."}
    assert (await client.post(url, json=fix)).status_code == 201
    renamed = await client.patch(f"/v1/jobs/{job.id}/speakers/S2", json={"name": "Alice"})
    assert renamed.status_code == 200, renamed.text
    result = (await client.get(f"/v1/jobs/{job.id}/result")).json()
    assert [s["text"] for s in result["segments"]] == ["Hello.", "Hi there.", "Bye."]

    # The merge stage runs again (a replay) and its new result has one segment more.
    first = await services.records.current_artifact(job.id, "merge")
    assert first is not None
    old = services.store.get_json(services.store.key_of(first.uri), MeetingResult)
    extra = ResultSegment(start=0.2, end=0.4, speaker="S2", text="Um.", words=[])
    merged_again = old.model_copy(update={"segments": [old.segments[0], extra, *old.segments[1:]]})
    await record_artifact(services, job.id, "merge", "k4", merged_again)
    merge = await services.records.current_artifact(job.id, "merge")
    assert merge is not None and merge.sha256 != job.merge_sha256

    result = (await client.get(f"/v1/jobs/{job.id}/result")).json()
    assert [s["text"] for s in result["segments"]] == ["Hello.", "Um.", "Hi.", "Bye."]
    assert {s["id"]: s.get("name") for s in result["speakers"]}["S2"] == "Alice"
