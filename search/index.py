"""The search index: a job's passages and their vectors in Qdrant.

One code path for both deployments: `QdrantClient(path=<data_dir>/qdrant)` (local mode,
nothing to start, the default) or `QdrantClient(url=SCRIBE_QDRANT_URL)` for a server; every
call below is the same in both. Local mode locks its folder to one process, and the gateway
is that process (docs/architecture.md, "Search", says why); with a server, several gateways
share it and upserts are idempotent (deterministic point ids).

One collection per embedding model id (vectors of two models do not compare, and a change
of model re-embeds into a new collection while the old one keeps answering); its vector
size is the model's. A point is one passage; its payload says whose it is (owner, the
tenant), where it is (job, file name, segments, start, end), who said it (speaker id and
name as corrected), the words, and what made it (model id, embed artifact id).
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from core.artifacts import Passage

COLLECTION_PREFIX = "scribe_passages"
UPSERT_BATCH = 16
# A fixed namespace: the same passage of the same artifact is the same point everywhere.
POINT_NAMESPACE = uuid.UUID("6f1c2a4e-93b1-4d5e-a4c2-5e0b8d7f3a10")


def collection_name(model_id: str) -> str:
    """The collection of one embedding model: readable, and unique per id (a hash, since
    two ids may slug alike)."""
    slug = re.sub(r"[^a-z0-9]+", "_", model_id.lower()).strip("_")[:48]
    digest = hashlib.sha256(model_id.encode()).hexdigest()[:10]
    return f"{COLLECTION_PREFIX}_{slug}_{digest}"


def point_id(job_id: str, passage_index: int, artifact_id: str) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"{job_id}/{passage_index}/{artifact_id}"))


@dataclass(frozen=True)
class IndexedJob:
    """What the index stores about a job beside its passages."""

    job_id: str
    owner: str | None  # the tenant; None: the single-user owner
    file_name: str | None
    created_at: datetime | None = None


@dataclass(frozen=True)
class IndexedArtifact:
    """What the index holds of a job: the points of one embed artifact (their ids follow
    from job, passage index and artifact id, so they can be removed without a search)."""

    model_id: str
    artifact_id: str
    passages: int


@dataclass(frozen=True)
class SearchHit:
    job_id: str
    file_name: str | None
    segment_index: int
    segment_indices: list[int]
    start: float
    end: float
    speaker_id: str
    speaker_name: str | None
    text: str
    score: float
    created_at: float | None = None

    @property
    def speaker(self) -> str:
        return self.speaker_name or self.speaker_id


class SearchIndex:
    """Passages in Qdrant. Blocking calls (run them in a thread from async code)."""

    def __init__(self, client: QdrantClient, *, local: bool) -> None:
        self.client = client
        self.local = local
        # Local mode is one in-process store without its own locking: one call at a time.
        self._lock = threading.RLock()
        self._known: set[str] = set()

    @classmethod
    def open(cls, url: str | None, path: Path) -> SearchIndex:
        """A server at `url`, else local mode in `path` (locked to this process)."""
        if url:
            return cls(QdrantClient(url=url), local=False)
        path.mkdir(parents=True, exist_ok=True)
        return cls(QdrantClient(path=str(path)), local=True)

    def close(self) -> None:
        with self._lock:
            self.client.close()

    # ------------------------------------------------------------ writing

    def ensure_collection(self, model_id: str, dim: int) -> str:
        name = collection_name(model_id)
        with self._lock:
            if name in self._known:
                return name
            if not self.client.collection_exists(name):
                self.client.create_collection(
                    name,
                    vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
                )
                if not self.local:  # local mode has no payload indexes (and warns)
                    for field in ("owner", "job_id", "artifact_id", "speaker_id", "speaker_name"):
                        self.client.create_payload_index(
                            name, field, models.PayloadSchemaType.KEYWORD
                        )
                    self.client.create_payload_index(
                        name, "created_at", models.PayloadSchemaType.FLOAT
                    )
            self._known.add(name)
            return name

    def upsert_job(
        self,
        job: IndexedJob,
        passages: Sequence[Passage],
        vectors: np.ndarray,
        *,
        model_id: str,
        artifact_id: str,
        replaces: IndexedArtifact | None = None,
    ) -> int:
        """Index one embed artifact of a job, then drop the points of the artifact it
        `replaces` (the one indexed before, if any; by id, as a filtered delete in local
        mode reads every point). Idempotent. Returns how many passages it indexed."""
        if len(passages) != len(vectors):
            raise ValueError(f"{len(passages)} passages but {len(vectors)} vectors")
        dim = int(vectors.shape[1]) if vectors.ndim == 2 and len(vectors) else 0
        created = job.created_at.timestamp() if job.created_at else None
        if passages:
            name = self.ensure_collection(model_id, dim)
            points = [
                models.PointStruct(
                    id=point_id(job.job_id, p.index, artifact_id),
                    vector=[float(x) for x in v],
                    payload={
                        "owner": job.owner or "",
                        "job_id": job.job_id,
                        "file_name": job.file_name,
                        "created_at": created,
                        "segment_index": p.segment_index,
                        "segment_indices": p.segment_indices,
                        "start": p.start,
                        "end": p.end,
                        "speaker_id": p.speaker_id,
                        "speaker_name": p.speaker_name,
                        "text": p.text,
                        "model": model_id,
                        "artifact_id": artifact_id,
                    },
                )
                for p, v in zip(passages, vectors, strict=True)
            ]
            # Small batches, the lock taken for each: local mode writes every point in a
            # transaction of its own (tens of points a second on a slow disk), and a search
            # must not wait for a whole meeting's passages.
            for i in range(0, len(points), UPSERT_BATCH):
                with self._lock:
                    self.client.upsert(name, points=points[i : i + UPSERT_BATCH], wait=True)
        if replaces is not None and replaces.artifact_id != artifact_id:
            self.delete_artifact(job.job_id, replaces)
        return len(passages)

    def delete_artifact(self, job_id: str, artifact: IndexedArtifact) -> None:
        """The points of one indexed embed artifact of a job."""
        name = collection_name(artifact.model_id)
        ids: list[models.ExtendedPointId] = [
            point_id(job_id, i, artifact.artifact_id) for i in range(artifact.passages)
        ]
        with self._lock:
            if ids and self.client.collection_exists(name):
                self.client.delete(name, points_selector=models.PointIdsList(points=ids), wait=True)

    def delete_job(self, job_id: str) -> None:
        """Every passage of the job, in every collection, whatever made it (a filtered
        delete: it reads every point in local mode; `delete_artifact` does not)."""
        with self._lock:
            self._delete(models.Filter(must=[_match("job_id", job_id)]))

    def delete_owner(self, owner: str) -> None:
        """Every passage of one tenant, in every collection."""
        with self._lock:
            self._delete(models.Filter(must=[_match("owner", owner)]))

    def _delete(self, where: models.Filter) -> None:
        for name in self.collections():
            self.client.delete(name, points_selector=models.FilterSelector(filter=where), wait=True)

    # ------------------------------------------------------------ reading

    def collections(self) -> list[str]:
        with self._lock:
            found = self.client.get_collections().collections
        return sorted(c.name for c in found if c.name.startswith(COLLECTION_PREFIX + "_"))

    def query(
        self,
        model_id: str,
        vector: np.ndarray,
        *,
        owner: str | None,
        job_id: str | None = None,
        speaker: str | None = None,
        after: datetime | None = None,
        before: datetime | None = None,
        limit: int = 10,
    ) -> list[SearchHit]:
        """The passages nearest to `vector` in the model's collection. `owner` None
        searches every owner's (auth off: the single user sees every job, as the job list
        does); a tenant only ever sees its own. `speaker` matches the name as corrected or
        the label; `after`/`before` bound the meeting's creation time."""
        name = collection_name(model_id)
        where = _filter(owner, job_id, speaker, after, before)
        with self._lock:
            if not self.client.collection_exists(name):
                return []
            found = self.client.query_points(
                name,
                query=[float(x) for x in vector],
                query_filter=where,
                limit=limit,
                with_payload=True,
            ).points
        return [_hit(p.payload or {}, float(p.score)) for p in found]

    def count(
        self, model_id: str | None = None, *, owner: str | None = None, job_id: str | None = None
    ) -> int:
        names = [collection_name(model_id)] if model_id else self.collections()
        where = _filter(owner, job_id, None, None, None)
        total = 0
        with self._lock:
            for name in names:
                if self.client.collection_exists(name):
                    total += self.client.count(name, count_filter=where, exact=True).count
        return total


def _match(key: str, value: str) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def _filter(
    owner: str | None,
    job_id: str | None,
    speaker: str | None,
    after: datetime | None,
    before: datetime | None,
) -> models.Filter | None:
    must: list[Any] = []
    if owner is not None:
        must.append(_match("owner", owner))
    if job_id is not None:
        must.append(_match("job_id", job_id))
    if speaker is not None:
        must.append(
            models.Filter(should=[_match("speaker_name", speaker), _match("speaker_id", speaker)])
        )
    if after is not None or before is not None:
        must.append(
            models.FieldCondition(
                key="created_at",
                range=models.Range(
                    gte=after.timestamp() if after else None,
                    lt=before.timestamp() if before else None,
                ),
            )
        )
    return models.Filter(must=must) if must else None


def _hit(payload: dict[str, Any], score: float) -> SearchHit:
    return SearchHit(
        job_id=str(payload["job_id"]),
        file_name=payload.get("file_name"),
        segment_index=int(payload["segment_index"]),
        segment_indices=[int(i) for i in payload.get("segment_indices") or []],
        start=float(payload["start"]),
        end=float(payload["end"]),
        speaker_id=str(payload["speaker_id"]),
        speaker_name=payload.get("speaker_name"),
        text=str(payload["text"]),
        score=round(score, 4),
        created_at=payload.get("created_at"),
    )
