"""Voiceprint governance against real PostgreSQL, Redis and a file artifact store: consent,
source and expiry recorded with each voiceprint; DELETE and the expiry sweep remove the
embedding and every enrollment clip.

No worker runs here: enrollment from clips is answered by a stand-in `scribe.enroll` task
on the module's own queue prefix (as in test_gateway), and jobs are built the way the
stages leave them (tests/integration/stored_jobs.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from taskiq.receiver import Receiver

from core.settings import Settings
from events.queue import make_broker
from gateway.app import retention_sweeper, sweep_voiceprints_once
from gateway.services import Services
from storage.artifacts import speaker_prefix
from tests.integration.stored_jobs import (
    EMBEDDING,
    MODEL,
    enrolled_speaker,
    finished_job,
    module_services,
    wav_bytes,
)
from tests.support import app_client

GOVERNANCE = ("consent_by", "consent_at", "consent_note", "source", "expires_at")


@pytest.fixture(scope="module")
def gov_settings(settings: Settings) -> Settings:
    # Own queue prefix: the stand-in worker sees only this module's enrollments.
    return settings.model_copy(update={"redis_prefix": f"{settings.redis_prefix}-gov"})


@pytest.fixture(scope="module")
async def services(gov_settings: Settings) -> AsyncIterator[Services]:
    async with module_services(gov_settings) as svc:
        yield svc


@pytest.fixture(scope="module")
async def enroll_calls(
    gov_settings: Settings, services: Services
) -> AsyncIterator[list[tuple[str, str, list[str]]]]:
    """A stand-in worker for `scribe.enroll`: records the call, creates the row."""
    assert gov_settings.redis_url
    worker = make_broker(gov_settings, gov_settings.redis_url)
    worker.is_worker_process = True
    calls: list[tuple[str, str, list[str]]] = []

    @worker.task(task_name="scribe.enroll")
    async def enroll(
        speaker_id: str,
        name: str,
        clip_keys: list[str],
        governance: dict[str, object],
        max_duration_s: float | None,
    ) -> dict[str, object]:
        calls.append((speaker_id, name, clip_keys))
        return await enrolled_speaker(
            services, speaker_id, name, clip_keys, governance, model=MODEL, embedding=EMBEDDING
        )

    await worker.startup()
    stop = asyncio.Event()
    listening = asyncio.create_task(Receiver(worker, run_startup=False).listen(stop))
    yield calls
    stop.set()
    await asyncio.wait_for(listening, 10)
    await worker.shutdown()


@pytest.fixture(scope="module")
async def client(gov_settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(gov_settings, services) as c:
        yield c


@pytest.fixture(scope="module")
async def strict_client(
    gov_settings: Settings, services: Services
) -> AsyncIterator[httpx.AsyncClient]:
    strict = gov_settings.model_copy(update={"voiceprint_require_consent": True})
    async with app_client(strict, services) as c:
        yield c


def code(resp: httpx.Response) -> tuple[int, str]:
    return resp.status_code, resp.json()["error"]["code"]


async def enroll(
    client: httpx.AsyncClient, name: str, clips: int = 2, **fields: str
) -> httpx.Response:
    return await client.post(
        "/v1/speakers",
        data={"name": name, **fields},
        files=[("files", (f"c{i}.wav", wav_bytes(0.5), "audio/wav")) for i in range(clips)],
    )


async def clip_keys_of(services: Services, speaker: dict[str, object]) -> list[str]:
    assert "clip_uris" not in speaker  # server paths are not shown to clients
    stored, _ = await services.speakers.speaker_voiceprint(str(speaker["id"]))
    return [services.store.key_of(u) for u in stored.clip_uris]


# ---------------------------------------------------------------- enrollment from clips


async def test_enroll_records_consent_source_and_expiry(
    client: httpx.AsyncClient, services: Services, enroll_calls: list[object]
) -> None:
    expires = datetime.now(UTC) + timedelta(days=30)
    before = datetime.now(UTC)
    resp = await enroll(
        client,
        "Grace",
        consent_by="Grace Hopper",
        consent_note="  signed form 12  ",
        expires_at=expires.isoformat(),
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["consent_by"] == "Grace Hopper"
    assert body["consent_note"] == "signed form 12"
    assert before <= datetime.fromisoformat(body["consent_at"]) <= datetime.now(UTC)
    assert body["source"] == "clips"
    assert datetime.fromisoformat(body["expires_at"]) == expires
    assert body["model"] == MODEL and body["num_clips"] == 2

    listed = [s for s in (await client.get("/v1/speakers")).json() if s["id"] == body["id"]]
    assert len(listed) == 1
    assert {k: listed[0][k] for k in GOVERNANCE} == {k: body[k] for k in GOVERNANCE}
    assert "embedding" not in listed[0]

    # Without consent (not required by default): enrolled, consent left unrecorded.
    resp = await enroll(client, "Anon", clips=1)
    assert resp.status_code == 201, resp.text
    assert [resp.json()[k] for k in GOVERNANCE] == [None, None, None, "clips", None]


async def test_enroll_form_errors_keep_no_clips(
    client: httpx.AsyncClient, services: Services, enroll_calls: list[object]
) -> None:
    kicked = len(enroll_calls)
    bad = await enroll(client, "X", consent_by="X", expires_at="next tuesday")
    assert code(bad) == (422, "invalid_request")
    assert "expires_at" in bad.json()["error"]["message"]
    past = await enroll(client, "X", consent_by="X", expires_at="2020-01-01T00:00:00Z")
    assert code(past) == (422, "invalid_request")
    assert "past" in past.json()["error"]["message"]
    note_only = await enroll(client, "X", consent_note="said yes")
    assert code(note_only) == (422, "invalid_request")
    assert len(enroll_calls) == kicked  # refused before any worker was asked
    # No clips left behind by the refused forms: every stored clip belongs to a row.
    root = Path(services.store.path("speakers"))
    owners = {p.relative_to(root).parts[0] for p in root.rglob("*") if p.is_file()}
    assert owners <= {s.id for s in await services.speakers.list_speakers()}


async def test_consent_required_refuses_enrollment_without_it(
    strict_client: httpx.AsyncClient, services: Services, enroll_calls: list[object]
) -> None:
    kicked = len(enroll_calls)
    resp = await enroll(strict_client, "Nobody asked")
    assert code(resp) == (422, "invalid_request")
    message = resp.json()["error"]["message"]
    assert "consent_by" in message and "consent" in message
    assert len(enroll_calls) == kicked
    assert "Nobody asked" not in [s.name for s in await services.speakers.list_speakers()]

    resp = await enroll(strict_client, "Asked", consent_by="Asked Person")
    assert resp.status_code == 201, resp.text
    assert resp.json()["consent_by"] == "Asked Person"


# ---------------------------------------------------------------- deletion


async def test_delete_removes_the_voiceprint_and_every_clip(
    client: httpx.AsyncClient, services: Services, enroll_calls: list[object]
) -> None:
    resp = await enroll(client, "Leaving", clips=3, consent_by="Leaving")
    assert resp.status_code == 201, resp.text
    speaker = resp.json()
    keys = await clip_keys_of(services, speaker)
    assert len(keys) == 3 and all(services.store.exists(k) for k in keys)
    # Something else under the speaker's folder goes too.
    services.store.put_bytes(f"{speaker_prefix(speaker['id'])}/notes.txt", b"x")

    assert (await client.delete(f"/v1/speakers/{speaker['id']}")).status_code == 204
    assert [k for k in keys if services.store.exists(k)] == []
    assert not services.store.exists(f"{speaker_prefix(speaker['id'])}/notes.txt")
    assert speaker["id"] not in [s["id"] for s in (await client.get("/v1/speakers")).json()]
    assert speaker["id"] not in [v[0] for v in await services.speakers.voiceprints()]
    assert code(await client.delete(f"/v1/speakers/{speaker['id']}")) == (404, "not_found")


# ---------------------------------------------------------------- remember from a job


async def test_remember_records_the_job_as_source_with_consent(
    client: httpx.AsyncClient, services: Services
) -> None:
    job = await finished_job(services)
    expires = datetime.now(UTC) + timedelta(days=7)
    resp = await client.patch(
        f"/v1/jobs/{job.id}/speakers/S1",
        json={
            "name": "Ada",
            "remember": True,
            "consent_by": "Ada Lovelace",
            "consent_note": "asked in the meeting",
            "expires_at": expires.isoformat(),
        },
    )
    assert resp.status_code == 200, resp.text
    speaker_id = resp.json()["speaker_id"]
    enrolled, _ = await services.speakers.speaker_voiceprint(speaker_id)
    assert enrolled.source == f"job:{job.id}:S1"
    assert (enrolled.consent_by, enrolled.consent_note) == ("Ada Lovelace", "asked in the meeting")
    assert enrolled.consent_at is not None and enrolled.expires_at == expires
    listed = [s for s in (await client.get("/v1/speakers")).json() if s["id"] == speaker_id]
    assert listed[0]["source"] == f"job:{job.id}:S1" and "embedding" not in listed[0]

    # Learning from another job keeps the creation source and the consent on record, and
    # records which recording's voice was added, and when.
    other = await finished_job(services)
    resp = await client.patch(
        f"/v1/jobs/{other.id}/speakers/S1",
        json={"name": "Ada", "remember": True, "speaker_id": speaker_id},
    )
    assert resp.status_code == 200, resp.text
    again, _ = await services.speakers.speaker_voiceprint(speaker_id)
    assert again.source is not None
    first, added = again.source.split(" + ")
    assert first == f"job:{job.id}:S1"
    assert added.startswith(f"job:{other.id}:S1@")
    assert datetime.fromisoformat(added.split("@", 1)[1]) >= enrolled.consent_at - timedelta(1)
    assert (again.consent_by, again.consent_at, again.expires_at) == (
        "Ada Lovelace",
        enrolled.consent_at,
        expires,
    )

    # Consent fields without `remember` describe nothing: refused.
    resp = await client.patch(
        f"/v1/jobs/{other.id}/speakers/S1", json={"name": "Ada", "consent_by": "Ada"}
    )
    assert code(resp) == (422, "invalid_request")


async def test_remember_without_consent_is_refused_when_required(
    strict_client: httpx.AsyncClient, services: Services
) -> None:
    job = await finished_job(services)
    before = await services.speakers.list_speakers()
    url = f"/v1/jobs/{job.id}/speakers/S1"
    resp = await strict_client.patch(url, json={"name": "Bea", "remember": True})
    assert code(resp) == (422, "invalid_request")
    assert "consent_by" in resp.json()["error"]["message"]
    assert await services.speakers.list_speakers() == before
    assert await services.corrections.list_corrections(job.id) == []

    resp = await strict_client.patch(
        url, json={"name": "Bea", "remember": True, "consent_by": "Bea"}
    )
    assert resp.status_code == 200, resp.text
    enrolled, _ = await services.speakers.speaker_voiceprint(resp.json()["speaker_id"])
    assert (enrolled.consent_by, enrolled.source) == ("Bea", f"job:{job.id}:S1")


async def test_adding_a_voice_to_a_consented_voiceprint_asks_consent_again(
    strict_client: httpx.AsyncClient, services: Services
) -> None:
    """Where consent is required, a voiceprint that has it does not take in another
    recording's voice (which may not even be that person's) without consent given now."""
    job = await finished_job(services)
    resp = await strict_client.patch(
        f"/v1/jobs/{job.id}/speakers/S1",
        json={"name": "Cy", "remember": True, "consent_by": "Cy"},
    )
    assert resp.status_code == 200, resp.text
    speaker_id = resp.json()["speaker_id"]
    enrolled, print_before = await services.speakers.speaker_voiceprint(speaker_id)

    other = await finished_job(services)
    url = f"/v1/jobs/{other.id}/speakers/S1"
    resp = await strict_client.patch(
        url, json={"name": "Cy", "remember": True, "speaker_id": speaker_id}
    )
    assert code(resp) == (422, "invalid_request")
    message = resp.json()["error"]["message"]
    assert "adding this voice to Cy's voiceprint" in message and "consent_by" in message
    unchanged, print_after = await services.speakers.speaker_voiceprint(speaker_id)
    assert print_after == print_before and unchanged.source == enrolled.source
    assert await services.corrections.list_corrections(other.id) == []

    resp = await strict_client.patch(
        url, json={"name": "Cy", "remember": True, "speaker_id": speaker_id, "consent_by": "Cy"}
    )
    assert resp.status_code == 200, resp.text
    refined, _ = await services.speakers.speaker_voiceprint(speaker_id)
    assert refined.source is not None and f"job:{other.id}:S1@" in refined.source


# ---------------------------------------------------------------- expiry


async def expired_speaker(
    services: Services, name: str, *, days_ago: float
) -> tuple[str, list[str]]:
    """A voiceprint with two clips in the store, whose expiry is `days_ago` in the past
    (negative: in the future)."""
    sid = str(uuid.uuid4())
    keys = [f"{speaker_prefix(sid)}/clip-{i}" for i in (1, 2)]
    for key in keys:
        services.store.put_bytes(key, wav_bytes(0.2))
    await services.speakers.create_speaker(
        speaker_id=sid,
        name=name,
        model=MODEL,
        embedding=[1.0, 0.0, 0.0],
        clip_uris=[services.store.uri(k) for k in keys],
        expires_at=datetime.now(UTC) - timedelta(days=days_ago),
    )
    return sid, keys


async def test_the_sweep_deletes_expired_voiceprints_and_their_clips(
    services: Services,
) -> None:
    gone, gone_keys = await expired_speaker(services, "Expired", days_ago=1)
    kept, kept_keys = await expired_speaker(services, "Not yet", days_ago=-1)
    # An expired voiceprint is never used, even before the sweep runs.
    assert gone not in [v[0] for v in await services.speakers.voiceprints()]
    assert kept in [v[0] for v in await services.speakers.voiceprints()]

    deleted = await sweep_voiceprints_once(services)
    assert gone in deleted and kept not in deleted
    assert [k for k in gone_keys if services.store.exists(k)] == []
    assert all(services.store.exists(k) for k in kept_keys)
    ids = [s.id for s in await services.speakers.list_speakers()]
    assert gone not in ids and kept in ids
    assert await sweep_voiceprints_once(services) == []


async def test_the_gateway_sweeps_voiceprints_without_job_retention(
    gov_settings: Settings, services: Services
) -> None:
    assert gov_settings.retention_days is None
    sid, keys = await expired_speaker(services, "Expired at startup", days_ago=0.01)
    async with retention_sweeper(gov_settings, services):
        for _ in range(100):
            if sid not in [s.id for s in await services.speakers.list_speakers()]:
                break
            await asyncio.sleep(0.05)
    assert sid not in [s.id for s in await services.speakers.list_speakers()]
    assert [k for k in keys if services.store.exists(k)] == []
