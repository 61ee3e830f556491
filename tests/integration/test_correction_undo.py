"""DELETE /v1/jobs/{id}/corrections/{correction_id}: undo one correction, against real
PostgreSQL and a real artifact store, on jobs built directly in the stores (no worker):
tests/integration/stored_jobs.py."""

from __future__ import annotations

import uuid

import httpx
import pytest

from core.artifacts import MeetingResult, ResultSegment, ResultWord
from core.errors import NotFound
from core.settings import Settings
from gateway.services import Services
from tests.integration import test_corrections_api as base
from tests.integration.stored_jobs import finished_job, record_artifact
from tests.integration.test_corrections_api import code
from tests.support import app_client

# The same module-scoped fixtures (a Services connection and an ASGI client).
services = base.services
client = base.client


async def correct(client: httpx.AsyncClient, job_id: str, body: dict[str, object]) -> str:
    resp = await client.post(f"/v1/jobs/{job_id}/corrections", json=body)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def lines(client: httpx.AsyncClient, job_id: str) -> list[tuple[str, str]]:
    result = (await client.get(f"/v1/jobs/{job_id}/result")).json()
    return [(s["speaker"], s["text"]) for s in result["segments"]]


async def test_undo_any_correction_and_the_result_reads_as_before(
    client: httpx.AsyncClient, services: Services
) -> None:
    job = await finished_job(services)
    url = f"/v1/jobs/{job.id}/corrections"
    txt_before = (await client.get(f"/v1/jobs/{job.id}/result", params={"format": "txt"})).text
    fixed = await correct(client, job.id, {"kind": "fix_text", "segment": 0, "text": "Hallo!"})
    moved = await correct(client, job.id, {"kind": "reassign", "segment": 1, "speaker": "S1"})
    renamed = await client.patch(f"/v1/jobs/{job.id}/speakers/S1", json={"name": "Alice"})
    assert renamed.status_code == 200, renamed.text
    assert await lines(client, job.id) == [("S1", "Hallo!"), ("S1", "Hi."), ("S1", "Bye.")]

    # Not only the latest: the first one goes, the two after it still apply.
    resp = await client.delete(f"{url}/{fixed}")
    assert resp.status_code == 204 and resp.content == b""
    assert await lines(client, job.id) == [("S1", "Hello."), ("S1", "Hi."), ("S1", "Bye.")]
    listed = (await client.get(url)).json()
    assert [c["kind"] for c in listed] == ["reassign", "rename_speaker"]
    assert listed[0]["id"] == moved

    # Gone is gone: a second undo of it, an unknown id or a malformed one are 404.
    assert code(await client.delete(f"{url}/{fixed}")) == (404, "not_found")
    assert code(await client.delete(f"{url}/{uuid.uuid4()}")) == (404, "not_found")
    assert code(await client.delete(f"{url}/not-an-id")) == (404, "not_found")
    missing_job = f"/v1/jobs/{uuid.uuid4()}/corrections/{moved}"
    assert code(await client.delete(missing_job)) == (404, "not_found")
    # Another job's correction is not this job's to undo.
    other = await finished_job(services)
    assert code(await client.delete(f"/v1/jobs/{other.id}/corrections/{moved}")) == (
        404,
        "not_found",
    )

    for correction in listed:
        assert (await client.delete(f"{url}/{correction['id']}")).status_code == 204
    assert (await client.get(url)).json() == []
    assert (await client.get(f"/v1/jobs/{job.id}/result", params={"format": "txt"})).text == (
        txt_before
    )


async def test_a_split_is_undone_after_the_corrections_that_depend_on_it(
    client: httpx.AsyncClient, services: Services
) -> None:
    job = await finished_job(services)
    words = [
        ResultWord(start=0.1 * i, end=0.1 * i + 0.1, word=f" w{i}", probability=0.9, speaker="S1")
        for i in range(4)
    ]
    two = ResultWord(start=0.6, end=0.8, word=" Hi.", probability=0.9, speaker="S2")
    merged = MeetingResult(
        job_id=job.id,
        duration_s=1.0,
        language="en",
        speakers=[],
        segments=[
            ResultSegment(start=0.0, end=0.4, speaker="S1", text="w0 w1 w2 w3", words=words),
            ResultSegment(start=0.6, end=0.8, speaker="S2", text="Hi.", words=[two]),
        ],
    )
    await record_artifact(services, job.id, "merge", "k-split", merged)
    url = f"/v1/jobs/{job.id}/corrections"
    split = await correct(
        client,
        job.id,
        {"kind": "reassign", "segment": 0, "speaker": "S2", "word_start": 1, "word_end": 3},
    )
    # Segment 3 exists only because of the split: it is the old segment 1, "Hi.".
    fixed = await correct(client, job.id, {"kind": "fix_text", "segment": 3, "text": "Hey."})
    renamed = await client.patch(f"/v1/jobs/{job.id}/speakers/S2", json={"name": "Bea"})
    assert renamed.status_code == 200, renamed.text
    assert await lines(client, job.id) == [
        ("S1", "w0"),
        ("S2", "w1 w2"),
        ("S1", "w3"),
        ("S2", "Hey."),
    ]

    resp = await client.delete(f"{url}/{split}")
    assert code(resp) == (409, "conflict")
    assert fixed in resp.json()["error"]["message"]
    assert len((await client.get(url)).json()) == 3  # nothing was undone

    assert (await client.delete(f"{url}/{fixed}")).status_code == 204
    assert (await client.delete(f"{url}/{split}")).status_code == 204
    assert await lines(client, job.id) == [("S1", "w0 w1 w2 w3"), ("S2", "Hi.")]
    assert [c["kind"] for c in (await client.get(url)).json()] == ["rename_speaker"]


async def test_only_the_owner_can_undo(settings: Settings, services: Services) -> None:
    job = await finished_job(services)
    alice_key, alice = await services.auth.create_key(f"t-{uuid.uuid4().hex[:8]}")
    _, mallory = await services.auth.create_key(f"t-{uuid.uuid4().hex[:8]}")
    async with services.pool.acquire() as conn:
        await conn.execute(
            "UPDATE jobs SET owner = $2 WHERE id = $1",
            uuid.UUID(job.id),
            uuid.UUID(alice_key.tenant_id),
        )
    async with app_client(settings.model_copy(update={"auth": "on"}), services) as c:
        url = f"/v1/jobs/{job.id}/corrections"
        body = {"kind": "fix_text", "segment": 0, "text": "Mine."}
        resp = await c.post(url, json=body, headers={"Authorization": f"Bearer {alice}"})
        assert resp.status_code == 201, resp.text
        one = resp.json()["id"]
        assert code(await c.delete(f"{url}/{one}")) == (401, "unauthorized")
        other = await c.delete(f"{url}/{one}", headers={"Authorization": f"Bearer {mallory}"})
        assert code(other) == (404, "not_found")
        assert [x.id for x in await services.corrections.list_corrections(job.id)] == [one]
        with pytest.raises(NotFound):
            await services.corrections.delete_correction(job.id, one, owner=str(uuid.uuid4()))
        mine = await c.delete(f"{url}/{one}", headers={"Authorization": f"Bearer {alice}"})
        assert mine.status_code == 204
    assert await services.corrections.list_corrections(job.id) == []
