"""Stage leases, the reaper's queries and the orphan sweep, against real PostgreSQL and a
file:// store (no worker: each race is played out by hand, deterministically)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

import asyncpg
import pytest

from core.artifacts import JobParams, MeetingResult
from core.graph import DEFAULT_GRAPH, StageDecl, StageGraph
from storage import orphans
from storage.artifact_records import ArtifactRecordStore
from storage.artifacts import ArtifactStore, upload_key
from storage.jobs import JobStore
from storage.leases import LeaseGrant, LeaseRefusal, LeaseStore, Succeeded


async def new_job(jobs: JobStore) -> str:
    job_id = str(uuid.uuid4())
    await jobs.create_job(
        job_id=job_id,
        filename="a.wav",
        content_type=None,
        size_bytes=1,
        upload_uri=f"file:///nowhere/{job_id}",
        upload_sha256="0" * 64,
        params=JobParams(),
    )
    return job_id


async def record(pool: asyncpg.Pool, job_id: str, stage: str) -> str:
    rec = await ArtifactRecordStore(pool).record_artifact(
        job_id=job_id,
        stage=stage,
        key=f"k-{stage}",
        uri=f"file:///nowhere/{job_id}/{stage}",
        sha256="1" * 64,
        size_bytes=1,
        params={},
        model=None,
        inputs=[],
        started_at=None,
        finished_at=None,
        worker="test",
    )
    return rec.id


async def test_one_live_lease_per_stage_and_takeover_after_expiry(
    db_pool: asyncpg.Pool,
) -> None:
    jobs, leases = JobStore(db_pool, DEFAULT_GRAPH), LeaseStore(db_pool, DEFAULT_GRAPH)
    job_id = await new_job(jobs)

    first = await leases.acquire(job_id, "decode", "w1", ttl_s=0.5)
    assert first == LeaseGrant(owner="w1", attempts=1)
    second = await leases.acquire(job_id, "decode", "w2", ttl_s=0.5)
    assert isinstance(second, LeaseRefusal) and second.held_by_other
    assert second.stage_status == "running" and second.job_status == "running"
    # A later stage cannot start before decode is done, whoever asks.
    early = await leases.acquire(job_id, "diarize", "w2", ttl_s=0.5)
    assert isinstance(early, LeaseRefusal) and early.waiting_for == "decode"

    assert await leases.renew(job_id, "decode", "w1", ttl_s=0.5)
    await asyncio.sleep(0.7)  # w1 stops renewing: it died
    taken = await leases.acquire(job_id, "decode", "w2", ttl_s=5)
    assert taken == LeaseGrant(owner="w2", attempts=2)
    # The first worker wakes up: it may no longer renew nor record anything.
    art = await record(db_pool, job_id, "decode")
    assert not await leases.renew(job_id, "decode", "w1", ttl_s=5)
    assert not await leases.succeed(job_id, "decode", "w1", art, reused=False)
    assert not await leases.fail(job_id, "decode", "w1", "late")
    assert await leases.succeed(job_id, "decode", "w2", art, reused=False)

    job = await jobs.get_job(job_id)
    decode = job.stages[0]
    assert decode.status == "succeeded" and decode.attempts == 2 and decode.worker == "w2"
    # A redelivered decode message now finds the stage done.
    again = await leases.acquire(job_id, "decode", "w3", ttl_s=5)
    assert isinstance(again, LeaseRefusal) and again.stage_status == "succeeded"


async def test_reaper_takes_an_expired_stage_once(db_pool: asyncpg.Pool) -> None:
    jobs, leases = JobStore(db_pool, DEFAULT_GRAPH), LeaseStore(db_pool, DEFAULT_GRAPH)
    job_id = await new_job(jobs)
    assert isinstance(await leases.acquire(job_id, "decode", "dead", ttl_s=0.2), LeaseGrant)
    assert (job_id, "decode") not in await leases.take_over_expired()
    await asyncio.sleep(0.3)
    first, second = await asyncio.gather(leases.take_over_expired(), leases.take_over_expired())
    assert (first + second).count((job_id, "decode")) == 1
    job = await jobs.get_job(job_id)
    assert job.stages[0].status == "queued"
    assert isinstance(await leases.acquire(job_id, "decode", "next", ttl_s=5), LeaseGrant)


async def test_stalled_job_between_stages(db_pool: asyncpg.Pool) -> None:
    jobs, leases = JobStore(db_pool, DEFAULT_GRAPH), LeaseStore(db_pool, DEFAULT_GRAPH)
    job_id = await new_job(jobs)
    assert isinstance(await leases.acquire(job_id, "decode", "w", ttl_s=5), LeaseGrant)
    assert await leases.succeed(
        job_id, "decode", "w", await record(db_pool, job_id, "decode"), reused=False
    )
    # Killed before queueing diarize: nothing runs, nothing moves.
    assert job_id not in [s.job_id for s in await leases.stalled(stall_after_s=60)]
    await asyncio.sleep(0.3)
    stalled = [s for s in await leases.stalled(stall_after_s=0.2) if s.job_id == job_id]
    # Both stages that read decode may run: the reaper sends the two.
    assert [s.stages for s in stalled] == [("diarize", "transcribe")]
    results = await asyncio.gather(*(leases.claim_stalled(stalled[0]) for _ in range(3)))
    assert sorted(results) == [False, False, True]


async def test_last_stage_ends_the_job_and_marks_its_event_pending(db_pool: asyncpg.Pool) -> None:
    jobs, leases = JobStore(db_pool, DEFAULT_GRAPH), LeaseStore(db_pool, DEFAULT_GRAPH)
    job_id = await new_job(jobs)
    for stage in DEFAULT_GRAPH.names:
        assert isinstance(await leases.acquire(job_id, stage, "w", ttl_s=5), LeaseGrant)
        assert await leases.succeed(
            job_id, stage, "w", await record(db_pool, job_id, stage), reused=False
        )
    assert (await jobs.get_job(job_id)).status == "succeeded"
    await asyncio.sleep(0.05)
    assert job_id in await leases.unpublished_terminal(older_than_s=0.0)
    await leases.terminal_published(job_id)
    assert job_id not in await leases.unpublished_terminal(older_than_s=0.0)
    # Concurrent replays: one wins.
    won = await asyncio.gather(*(leases.requeue_if_finished(job_id, ["merge"]) for _ in range(4)))
    assert sorted(won) == [False, False, False, True]
    assert (await jobs.get_job(job_id)).status == "queued"


async def test_sweep_removes_old_temporaries_and_jobless_uploads(
    db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    jobs = JobStore(db_pool, DEFAULT_GRAPH)
    store = ArtifactStore("file", str(tmp_path / "store"))
    kept_job = await new_job(jobs)
    orphan_job = str(uuid.uuid4())
    fresh_orphan = str(uuid.uuid4())
    for jid in (kept_job, orphan_job, fresh_orphan):
        store.put_bytes(upload_key(jid), b"RIFF....WAVE")
    w = store.writer(f"jobs/{kept_job}/decode/k/audio.wav")  # a write killed halfway
    w.write(b"half")
    w._file.close()
    tmp = next(p for p in (tmp_path / "store").rglob("*.tmp-*"))
    old = time.time() - 7200
    for path in [tmp, *(tmp_path / "store" / "jobs" / orphan_job).rglob("*")]:
        os.utime(path, (old, old))
    (tmp_path / "store" / "jobs" / "not-a-uuid").mkdir()

    report = await orphans.sweep(store, db_pool, max_age_s=3600)
    assert report.job_dirs == [orphan_job]
    assert len(report.temporaries) == 1 and report.temporaries[0].endswith(tmp.name)
    assert not tmp.exists()
    assert not (tmp_path / "store" / "jobs" / orphan_job).exists()
    assert store.exists(upload_key(kept_job)) and store.exists(upload_key(fresh_orphan))
    assert (tmp_path / "store" / "jobs" / "not-a-uuid").is_dir()
    again = await orphans.sweep(store, db_pool, max_age_s=3600)
    assert again.job_dirs == [] and again.temporaries == []


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (asyncpg.exceptions.ConnectionDoesNotExistError("gone"), True),
        (asyncpg.exceptions.CannotConnectNowError("starting up"), True),
        (FileNotFoundError("x"), False),
        (ValueError("bug"), False),
    ],
)
def test_transient_or_permanent(exc: BaseException, transient: bool) -> None:
    import redis.exceptions

    from core.errors import BadInput, StageFailed
    from stages.recovery import is_transient

    assert is_transient(exc) is transient
    assert is_transient(redis.exceptions.ConnectionError("down"))
    assert is_transient(StageFailed("decode", "busy", permanent=False))
    assert not is_transient(StageFailed("decode", "bad audio"))
    assert not is_transient(BadInput("no"))


# ---------------------------------------------------------------- the graph


async def succeed(leases: LeaseStore, job_id: str, stage: str) -> Succeeded:
    assert isinstance(await leases.acquire(job_id, stage, f"w-{stage}", ttl_s=5), LeaseGrant)
    outcome = await leases.succeed(
        job_id, stage, f"w-{stage}", await record(leases.pool, job_id, stage), reused=False
    )
    assert outcome is not None
    return outcome


async def test_decode_releases_diarize_and_transcribe_together(db_pool: asyncpg.Pool) -> None:
    jobs, leases = JobStore(db_pool, DEFAULT_GRAPH), LeaseStore(db_pool, DEFAULT_GRAPH)
    job_id = await new_job(jobs)
    refused = await leases.acquire(job_id, "identify", "w", ttl_s=5)
    assert isinstance(refused, LeaseRefusal) and refused.waiting_for == "diarize"
    assert (await succeed(leases, job_id, "decode")).ready == ("diarize", "transcribe")
    # Both may run at once, and identify waits for diarize only.
    assert isinstance(await leases.acquire(job_id, "diarize", "a", ttl_s=5), LeaseGrant)
    assert isinstance(await leases.acquire(job_id, "transcribe", "b", ttl_s=5), LeaseGrant)
    refused = await leases.acquire(job_id, "merge", "c", ttl_s=5)
    assert isinstance(refused, LeaseRefusal) and refused.waiting_for == "diarize"


async def test_two_inputs_finishing_together_send_merge_once(db_pool: asyncpg.Pool) -> None:
    for _ in range(5):  # a race: played several times
        jobs, leases = JobStore(db_pool, DEFAULT_GRAPH), LeaseStore(db_pool, DEFAULT_GRAPH)
        job_id = await new_job(jobs)
        await succeed(leases, job_id, "decode")
        assert (await succeed(leases, job_id, "diarize")).ready == ("identify",)
        for stage in ("transcribe", "identify"):
            grant = await leases.acquire(job_id, stage, f"w-{stage}", ttl_s=5)
            assert isinstance(grant, LeaseGrant)
        arts = {s: await record(db_pool, job_id, s) for s in ("transcribe", "identify")}
        outcomes = await asyncio.gather(
            *(
                leases.succeed(job_id, s, f"w-{s}", arts[s], reused=False)
                for s in ("transcribe", "identify")
            )
        )
        readies = [o.ready for o in outcomes if o is not None]
        assert sorted(readies) == [(), ("merge",)]  # sent once, never forgotten
        assert (await jobs.get_job(job_id)).status == "running"
        done = await succeed(leases, job_id, "merge")
        # The result is done; what reads only it (search indexing) is sent with it.
        assert done.job_done and done.ready == ready_with_the_result(DEFAULT_GRAPH)
        assert "embed" in done.ready
        assert (await jobs.get_job(job_id)).status == "succeeded"


SHOUT = StageDecl(
    "shout",
    {"en": "Shouting", "fr": "Cris"},
    ("merge",),
    MeetingResult,
    "nowhere:SPEC",
    result=False,
)
AB = {"en": "A stage", "fr": "Une étape"}  # labels, for graphs that are never run


def ready_with_the_result(graph: StageGraph) -> tuple[str, ...]:
    """The stages after the result that read nothing else (embed, not summarize, which
    reads embed too): sent when the result is done."""
    done = set(graph.result_stages)
    return tuple(n for n in graph.dependents("merge") if set(graph[n].inputs) <= done)


async def test_a_stage_after_the_result_runs_after_success_and_fails_alone(
    db_pool: asyncpg.Pool,
) -> None:
    graph = DEFAULT_GRAPH.with_stage(SHOUT)
    jobs, leases = JobStore(db_pool, graph), LeaseStore(db_pool, graph)
    job_id = await new_job(jobs)
    for stage in ("decode", "diarize", "transcribe", "identify"):
        await succeed(leases, job_id, stage)
    merged = await succeed(leases, job_id, "merge")
    # The job has its result now; the stage after it is sent in the same breath.
    assert merged.job_done and merged.ready == ready_with_the_result(graph)
    assert "shout" in merged.ready
    assert (await jobs.get_job(job_id)).status == "succeeded"
    assert isinstance(await leases.acquire(job_id, "shout", "w", ttl_s=5), LeaseGrant)
    assert await leases.fail(job_id, "shout", "w", "could not shout")
    job = await jobs.get_job(job_id)
    assert job.status == "succeeded" and job.error is None
    assert [s.status for s in job.stages if s.stage == "shout"] == ["failed"]
    # Replaying it alone leaves the job succeeded; replaying transcribe re-runs what
    # depends on it only.
    assert await leases.requeue_if_finished(job_id, list(graph.downstream("shout")))
    assert (await jobs.get_job(job_id)).status == "succeeded"
    after_merge = graph.downstream("merge")[1:]
    assert "shout" in after_merge
    assert graph.downstream("transcribe") == ("transcribe", "merge", *after_merge)
    assert graph.downstream("identify") == ("identify", "merge", *after_merge)
    assert graph.downstream("decode") == graph.names


def test_a_graph_refuses_what_cannot_run() -> None:
    with pytest.raises(ValueError, match="no label in fr"):
        StageDecl("a", {"en": "A stage"}, (), MeetingResult, "x:y")
    with pytest.raises(ValueError, match="not declared before it"):
        StageGraph([StageDecl("a", AB, ("b",), MeetingResult, "x:y")])
    with pytest.raises(ValueError, match="declared twice"):
        DEFAULT_GRAPH.with_stage(StageDecl("merge", AB, (), MeetingResult, "x:y"))
    with pytest.raises(ValueError, match="runs after the result"):
        DEFAULT_GRAPH.with_stage(SHOUT).with_stage(
            StageDecl("late", AB, ("shout",), MeetingResult, "x:y", result=True)
        )


async def test_a_lost_stage_is_resumed_while_another_one_runs(db_pool: asyncpg.Pool) -> None:
    """diarize is done and identify's message is lost while transcribe runs long: the
    reaper's query offers identify without waiting for transcribe."""
    jobs, leases = JobStore(db_pool, DEFAULT_GRAPH), LeaseStore(db_pool, DEFAULT_GRAPH)
    job_id = await new_job(jobs)
    await succeed(leases, job_id, "decode")
    assert isinstance(await leases.acquire(job_id, "transcribe", "long", ttl_s=60), LeaseGrant)
    await succeed(leases, job_id, "diarize")  # identify is ready; say its message is lost
    await asyncio.sleep(0.3)
    stalled = [s for s in await leases.stalled(stall_after_s=0.2) if s.job_id == job_id]
    assert [s.stages for s in stalled] == [("identify",)]
    assert await leases.claim_stalled(stalled[0])


async def test_a_lost_stage_after_the_result_is_resumed(db_pool: asyncpg.Pool) -> None:
    graph = DEFAULT_GRAPH.with_stage(SHOUT)
    jobs, leases = JobStore(db_pool, graph), LeaseStore(db_pool, graph)
    job_id = await new_job(jobs)
    for stage in graph.result_stages:
        await succeed(leases, job_id, stage)
    assert (await jobs.get_job(job_id)).status == "succeeded"
    await asyncio.sleep(0.3)  # shout (and embed) were dispatched, and their messages lost
    stalled = [s for s in await leases.stalled(stall_after_s=0.2) if s.job_id == job_id]
    assert [s.stages for s in stalled] == [ready_with_the_result(graph)]
    assert "shout" in stalled[0].stages
    assert await leases.claim_stalled(stalled[0])  # a succeeded job may be touched too
