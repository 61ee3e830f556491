"""The stage contract, worker side: what a stage's implementation provides (`StageSpec`)
and what its compute step receives (`StageInput`).

A stage is declared in the graph (core.graph.StageDecl), which names its StageSpec by
import path; the generic runner (stages/tasks.py) does the bookkeeping around it: lease,
inputs, artifact key and reuse, events, recording.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.artifacts import ArtifactRecord
from core.events import ProgressCallback
from core.jobs import Job
from storage.artifacts import StoredObject

if TYPE_CHECKING:
    from stages.runtime import WorkerState


@dataclass
class StageInput:
    """What a stage's compute function receives (runs in a worker thread)."""

    state: WorkerState
    job: Job
    key_dir: str  # where to write this artifact's files
    inputs: dict[str, ArtifactRecord]  # the current artifact of each stage it reads
    params: dict[str, Any]
    progress: ProgressCallback


@dataclass(frozen=True)
class StageSpec:
    # (state, job) -> (params that define the output, model id): both go into the key.
    describe: Callable[[WorkerState, Job], Awaitable[tuple[dict[str, Any], str | None]]]
    compute: Callable[[StageInput], StoredObject]
    # Params that are inputs rather than settings (e.g. the voiceprints identify compares
    # against): passed to compute, left out of the recorded params.
    unrecorded: tuple[str, ...] = ()

    def recorded(self, params: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in params.items() if k not in self.unrecorded}
