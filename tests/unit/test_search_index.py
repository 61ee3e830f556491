"""search.index over Qdrant's real local mode (a folder under tmp_path): tenant scope,
filters, re-indexing a job, and deletion."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from core.artifacts import Passage
from search.index import IndexedArtifact, IndexedJob, SearchIndex

MODEL = "test-model@1"
DIM = 8


def unit(i: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i % DIM] = 1.0
    return v


def passages(n: int, speaker: str = "S1", name: str | None = None) -> list[Passage]:
    return [
        Passage(
            index=i, segment_index=2 * i, segment_indices=[2 * i, 2 * i + 1],
            start=10.0 * i, end=10.0 * i + 8, speaker_id=speaker, speaker_name=name,
            text=f"passage {i}",
        )
        for i in range(n)
    ]  # fmt: skip


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SearchIndex]:
    idx = SearchIndex.open(None, tmp_path / "qdrant")
    yield idx
    idx.close()


def job(job_id: str, owner: str | None, day: int = 1) -> IndexedJob:
    return IndexedJob(job_id, owner, f"{job_id}.wav", datetime(2026, 11, day, tzinfo=UTC))


def test_a_tenant_finds_its_own_passages_only(index: SearchIndex) -> None:
    vectors = np.stack([unit(i) for i in range(3)])
    index.upsert_job(job("a", "tenant-a"), passages(3), vectors, model_id=MODEL, artifact_id="x")
    index.upsert_job(job("b", "tenant-b"), passages(3), vectors, model_id=MODEL, artifact_id="y")
    hits = index.query(MODEL, unit(1), owner="tenant-a", limit=10)
    assert {h.job_id for h in hits} == {"a"} and len(hits) == 3
    best = hits[0]
    assert (best.segment_index, best.segment_indices, best.start, best.end) == (
        2,
        [2, 3],
        10.0,
        18.0,
    )
    assert best.file_name == "a.wav" and best.text == "passage 1" and best.score > 0.99
    # No owner (auth off): the single user sees every job.
    assert {h.job_id for h in index.query(MODEL, unit(1), owner=None)} == {"a", "b"}
    assert index.query(MODEL, unit(1), owner="tenant-c") == []
    assert index.query("another-model", unit(1), owner=None) == []
    assert index.count(MODEL, owner="tenant-b") == 3 and index.count() == 6


def test_filters_job_speaker_and_dates(index: SearchIndex) -> None:
    vectors = np.stack([unit(i) for i in range(2)])
    index.upsert_job(
        job("a", None, day=1), passages(2, "S1", "Alice"), vectors, model_id=MODEL, artifact_id="x"
    )
    index.upsert_job(
        job("b", None, day=20), passages(2, "S2"), vectors, model_id=MODEL, artifact_id="y"
    )
    assert {h.job_id for h in index.query(MODEL, unit(0), owner=None, job_id="b")} == {"b"}
    assert {h.speaker for h in index.query(MODEL, unit(0), owner=None, speaker="Alice")} == {
        "Alice"
    }
    assert {h.speaker for h in index.query(MODEL, unit(0), owner=None, speaker="S2")} == {"S2"}
    mid = datetime(2026, 11, 10, tzinfo=UTC)
    assert {h.job_id for h in index.query(MODEL, unit(0), owner=None, after=mid)} == {"b"}
    assert {h.job_id for h in index.query(MODEL, unit(0), owner=None, before=mid)} == {"a"}
    assert len(index.query(MODEL, unit(0), owner=None, limit=1)) == 1  # fmt: skip


def test_a_new_artifact_replaces_the_old_points_and_reindexing_is_idempotent(
    index: SearchIndex,
) -> None:
    vectors = np.stack([unit(i) for i in range(3)])
    index.upsert_job(job("a", "t"), passages(3), vectors, model_id=MODEL, artifact_id="old")
    index.upsert_job(job("a", "t"), passages(3), vectors, model_id=MODEL, artifact_id="old")
    assert index.count(MODEL, job_id="a") == 3
    renamed = passages(2, "S1", "Bob")
    old = IndexedArtifact(MODEL, "old", 3)
    index.upsert_job(
        job("a", "t"), renamed, vectors[:2], model_id=MODEL, artifact_id="new", replaces=old
    )
    assert index.count(MODEL, job_id="a") == 2
    assert {h.speaker for h in index.query(MODEL, unit(0), owner="t")} == {"Bob"}
    # A new embedding model: the job moves to that model's collection.
    other = np.stack([np.ones(4, dtype=np.float32) / 2] * 2)
    new = IndexedArtifact(MODEL, "new", 2)
    index.upsert_job(
        job("a", "t"), renamed, other, model_id="other@2", artifact_id="m2", replaces=new
    )
    assert index.count(MODEL, job_id="a") == 0 and index.count("other@2", job_id="a") == 2
    index.delete_artifact("a", IndexedArtifact("other@2", "m2", 2))
    assert index.count(job_id="a") == 0


def test_deleting_a_job_or_an_owner(index: SearchIndex) -> None:
    vectors = np.stack([unit(i) for i in range(2)])
    for name, owner in (("a", "t1"), ("b", "t1"), ("c", "t2")):
        index.upsert_job(job(name, owner), passages(2), vectors, model_id=MODEL, artifact_id=name)
    index.delete_job("a")
    assert index.count(job_id="a") == 0 and index.count(job_id="b") == 2
    index.delete_owner("t1")
    assert index.count(owner="t1") == 0 and index.count(owner="t2") == 2
    index.delete_job("missing")  # nothing to delete is fine


def test_mismatched_vectors_are_refused(index: SearchIndex) -> None:
    with pytest.raises(ValueError, match="2 passages but 1 vectors"):
        index.upsert_job(
            job("a", None), passages(2), np.stack([unit(0)]), model_id=MODEL, artifact_id="x"
        )
