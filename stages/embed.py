"""The embed stage: a job's transcript, as people read it, cut into passages and embedded
for search across meetings.

It runs after the result (core/graph.py declares it with `result=False`): the transcript
never waits for indexing, and a failure here is reported on the stage without failing the
job. It reads the merged result and applies the job's corrections (speaker names, text
fixes), which its parameters pass in and whose digest is in its key, so a rename or a fix
makes a new artifact. The expensive part, embedding every passage, happens here on the
worker; the artifact (passages JSON + float32 vectors .npy + model id + dim) is what the
gateway's index sync upserts into Qdrant (gateway/services/search_sync.py): the worker never opens
the index, whose local mode admits one process only.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import numpy as np

from core.artifacts import MeetingResult, SearchPassages
from core.corrections import Correction, apply_corrections
from search.embedder import vectors_to_bytes
from search.passages import cut_passages
from stages.compute import ARTIFACT
from storage.artifacts import StoredObject

if TYPE_CHECKING:
    from stages.contract import StageInput

BATCH = 32  # passages per embedder call: progress every few seconds on a CPU
VECTORS = "vectors.npy"


def corrections_digest(corrections: list[Correction]) -> str:
    """What the corrections say, in order (ids and times left out: the same words give
    the same key)."""
    said = [[c.kind, c.payload] for c in corrections]
    return hashlib.sha256(json.dumps(said, sort_keys=True).encode()).hexdigest()[:16]


def embed(si: StageInput) -> StoredObject:
    store = si.state.store
    merge = si.input_of(MeetingResult)
    result = store.get_json(store.key_of(merge.uri), MeetingResult)
    corrections = [Correction.model_validate(c) for c in si.params["correction_list"]]
    corrected = apply_corrections(result, corrections, si.state.graph, basis=merge.sha256)
    passages = cut_passages(corrected, int(si.params["passage_max_chars"]))
    embedder = si.state.models.text_embedder()
    rows: list[np.ndarray] = []
    for i in range(0, len(passages), BATCH):
        si.progress("embed", i, len(passages))
        rows.append(embedder.embed_passages([p.text for p in passages[i : i + BATCH]]))
    si.progress("embed", len(passages), max(len(passages), 1))
    vectors = np.concatenate(rows) if rows else np.zeros((0, embedder.dim), dtype=np.float32)
    stored = store.put_bytes(f"{si.key_dir}/{VECTORS}", vectors_to_bytes(vectors))
    doc = SearchPassages(
        job_id=si.job.id,
        model=embedder.model_id,
        dim=embedder.dim,
        vectors_uri=stored.uri,
        vectors_sha256=stored.sha256,
        passages=passages,
    )
    return store.put_json(f"{si.key_dir}/{ARTIFACT}", doc)
