"""Corrections and audio routes against real PostgreSQL and a real artifact store.

No worker runs here: each test builds a succeeded job the way the stages leave one
(tests/integration/stored_jobs.py: upload, decode/diarize/merge artifacts recorded in the
stores), then talks HTTP.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from core.settings import Settings
from gateway.services import Services
from storage.artifacts import ArtifactStore
from tests.integration.stored_jobs import (
    EMBEDDING,
    MODEL,
    FinishedJob,
    finished_job,
    module_services,
    queued_job,
)
from tests.support import app_client


@pytest.fixture(scope="module")
async def services(settings: Settings) -> AsyncIterator[Services]:
    async with module_services(settings) as svc:
        yield svc


@pytest.fixture(scope="module")
async def client(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings, services) as c:
        yield c


def code(resp: httpx.Response) -> tuple[int, str]:
    return resp.status_code, resp.json()["error"]["code"]


# ---------------------------------------------------------------- rename


async def test_rename_applies_to_every_format(
    client: httpx.AsyncClient, services: Services
) -> None:
    job = await finished_job(services)
    resp = await client.patch(f"/v1/jobs/{job.id}/speakers/S1", json={"name": "  Alice "})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "id": "S1",
        "name": "Alice",
        "speaker_id": None,
        "confidence": None,
        "talk_time_s": 0.5,
        "suggestion": None,  # a rename replaces any suggested name
    }
    result = (await client.get(f"/v1/jobs/{job.id}/result")).json()
    assert [(s["id"], s["name"]) for s in result["speakers"]] == [("S1", "Alice"), ("S2", None)]
    srt = (await client.get(f"/v1/jobs/{job.id}/result", params={"format": "srt"})).text
    assert srt.count("Alice: ") == 2 and "Speaker 2: Hi." in srt and "Speaker 1" not in srt
    txt = (await client.get(f"/v1/jobs/{job.id}/result", params={"format": "txt"})).text
    assert "Alice: Hello." in txt and "Alice: Bye." in txt
    vtt = (await client.get(f"/v1/jobs/{job.id}/result", params={"format": "vtt"})).text
    assert "<v Alice>Hello." in vtt

    # Renamed again: the later name wins; both corrections are kept, the artifact untouched.
    await client.patch(f"/v1/jobs/{job.id}/speakers/S1", json={"name": "Alicia"})
    result = (await client.get(f"/v1/jobs/{job.id}/result")).json()
    assert result["speakers"][0]["name"] == "Alicia"
    speakers = (await client.get(f"/v1/jobs/{job.id}/speakers")).json()
    assert [s["name"] for s in speakers] == ["Alicia", None]
    listed = (await client.get(f"/v1/jobs/{job.id}/corrections")).json()
    assert [(c["kind"], c["payload"]["name"]) for c in listed] == [
        ("rename_speaker", "Alice"),
        ("rename_speaker", "Alicia"),
    ]
    merge = await services.records.current_artifact(job.id, "merge")
    assert merge is not None
    assert services.store.sha256(services.store.key_of(merge.uri)) == job.merge_sha256

    # Deleting the job deletes its corrections (ON DELETE CASCADE).
    assert (await client.delete(f"/v1/jobs/{job.id}")).status_code == 204
    assert await services.corrections.list_corrections(job.id) == []


async def test_rename_errors(client: httpx.AsyncClient, services: Services) -> None:
    job = await finished_job(services)
    url = f"/v1/jobs/{job.id}/speakers"
    resp = await client.patch(f"{url}/S7", json={"name": "Alice"})
    assert code(resp) == (404, "not_found")
    assert "S1, S2" in resp.json()["error"]["message"]
    assert code(await client.patch(f"{url}/S1", json={"name": "   "})) == (422, "invalid_request")
    assert code(await client.patch(f"{url}/S1", json={})) == (422, "invalid_request")
    assert code(await client.patch(f"{url}/S1", json={"name": "A", "colour": "red"}))[0] == 422
    assert code(await client.patch(f"{url}/S1", json={"name": "x" * 201}))[0] == 422
    unknown = {"name": "Alice", "speaker_id": str(uuid.uuid4())}
    assert code(await client.patch(f"{url}/S1", json=unknown)) == (404, "not_found")
    missing = await client.patch(f"/v1/jobs/{uuid.uuid4()}/speakers/S1", json={"name": "A"})
    assert code(missing) == (404, "not_found")
    assert await services.corrections.list_corrections(job.id) == []

    failed = await finished_job(services, succeed=False)
    resp = await client.patch(f"/v1/jobs/{failed.id}/speakers/S1", json={"name": "Alice"})
    assert code(resp) == (409, "conflict")
    assert code(await client.get(f"/v1/jobs/{failed.id}/speakers")) == (409, "conflict")


# ---------------------------------------------------------------- remember this voice


async def test_remember_creates_then_updates_a_voiceprint(
    client: httpx.AsyncClient, services: Services
) -> None:
    job = await finished_job(services)
    url = f"/v1/jobs/{job.id}/speakers/S1"
    resp = await client.patch(url, json={"name": "Ada", "remember": True})
    assert resp.status_code == 200, resp.text
    speaker_id = resp.json()["speaker_id"]
    assert speaker_id
    enrolled, embedding = await services.speakers.speaker_voiceprint(speaker_id)
    assert (enrolled.name, enrolled.model, enrolled.num_clips) == ("Ada", MODEL, 0)
    assert embedding == pytest.approx(EMBEDDING)
    listed = (await client.get("/v1/speakers")).json()
    assert [s["name"] for s in listed if s["id"] == speaker_id] == ["Ada"]
    result = (await client.get(f"/v1/jobs/{job.id}/result")).json()
    assert result["speakers"][0]["speaker_id"] == speaker_id

    # A second job's S1 is the same person: the voiceprint learns from it, same id.
    other = await finished_job(services)
    await services.speakers.update_speaker(speaker_id, name="Ada", model=MODEL, embedding=[1, 0, 0])
    resp = await client.patch(
        f"/v1/jobs/{other.id}/speakers/S1",
        json={"name": "Ada L.", "remember": True, "speaker_id": speaker_id},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["speaker_id"] == speaker_id
    enrolled, embedding = await services.speakers.speaker_voiceprint(speaker_id)
    assert enrolled.name == "Ada L."
    assert math.isclose(math.hypot(*embedding), 1.0, rel_tol=1e-5)
    assert embedding[0] > EMBEDDING[0] and embedding[1] < EMBEDDING[1]  # between the two
    assert [s["id"] for s in (await client.get("/v1/speakers")).json()].count(speaker_id) == 1

    # Linking to an enrolled person without `remember` names them but leaves the print.
    resp = await client.patch(
        f"/v1/jobs/{other.id}/speakers/S2", json={"name": "Ada L.", "speaker_id": speaker_id}
    )
    assert resp.status_code == 200 and resp.json()["speaker_id"] == speaker_id
    assert (await services.speakers.speaker_voiceprint(speaker_id))[1] == embedding


async def test_remember_without_an_embedding_is_a_conflict(
    client: httpx.AsyncClient, services: Services
) -> None:
    job = await finished_job(services)
    before = await services.speakers.list_speakers()
    resp = await client.patch(
        f"/v1/jobs/{job.id}/speakers/S2", json={"name": "Bea", "remember": True}
    )
    assert code(resp) == (409, "conflict")
    assert "embedding" in resp.json()["error"]["message"]
    assert await services.speakers.list_speakers() == before
    assert await services.corrections.list_corrections(job.id) == []


# ---------------------------------------------------------------- audio


async def check_audio(client: httpx.AsyncClient, job: FinishedJob) -> None:
    url = f"/v1/jobs/{job.id}/audio"
    size = len(job.audio)
    whole = await client.get(url)
    assert whole.status_code == 200, whole.text
    assert whole.headers["content-type"] == "audio/wav"
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.content == job.audio

    part = await client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{size}"
    assert part.content == job.audio[100:200]
    tail = await client.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == job.audio[-10:]
    rest = await client.get(url, headers={"Range": f"bytes={size - 5}-"})
    assert rest.status_code == 206 and rest.content == job.audio[-5:]
    beyond = await client.get(url, headers={"Range": f"bytes={size + 10}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"


async def test_audio_from_a_file_store_with_ranges(
    client: httpx.AsyncClient, services: Services
) -> None:
    job = await finished_job(services)
    await check_audio(client, job)
    assert code(await client.get(f"/v1/jobs/{uuid.uuid4()}/audio")) == (404, "not_found")


async def test_audio_from_a_remote_store_with_ranges(
    settings: Settings, services: Services
) -> None:
    # fsspec's in-memory filesystem stands in for s3://: the route streams the ranges itself.
    remote = dataclasses.replace(
        services, store=ArtifactStore("memory", f"/scribe-{uuid.uuid4().hex[:8]}")
    )
    assert not remote.store.is_local
    async with app_client(settings, remote) as c:
        job = await finished_job(remote)
        await check_audio(c, job)
        remote.store.delete_prefix(f"jobs/{job.id}")


async def test_audio_before_decode_is_a_conflict(
    client: httpx.AsyncClient, services: Services
) -> None:
    job_id = await queued_job(services)
    resp = await client.get(f"/v1/jobs/{job_id}/audio")
    assert code(resp) == (409, "conflict")
    assert "decode" in resp.json()["error"]["message"]
