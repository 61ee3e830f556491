"""The stage contract, worker side: what a stage's implementation provides (`StageSpec`)
and what its compute step receives (`StageInput`).

A stage is declared in the graph (core.graph.StageDecl), which names its StageSpec by
import path; the generic runner (stages/tasks.py) does the bookkeeping around it: lease,
inputs, artifact key and reuse, events, recording.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from core.artifacts import ArtifactRecord
from core.events import ProgressCallback
from core.jobs import Job
from storage.artifacts import StoredObject

if TYPE_CHECKING:
    from stages.runtime import WorkerState

M = TypeVar("M", bound=BaseModel)


@dataclass
class StageInput:
    """What a stage's compute function receives (runs in a worker thread)."""

    state: WorkerState
    job: Job
    key_dir: str  # where to write this artifact's files
    inputs: dict[str, ArtifactRecord]  # the current artifact of each stage it reads
    params: dict[str, Any]
    progress: ProgressCallback

    def input_of(self, model: type[BaseModel]) -> ArtifactRecord:
        """The record of the input whose artifact is a `model`: the stage this one reads
        whose declared output (core/graph.py) is that class. A stage's code names what it
        reads by artifact type, so the stage names stay in the declaration."""
        graph = self.state.graph
        found = [r for name, r in self.inputs.items() if graph[name].output is model]
        if len(found) != 1:
            raise LookupError(
                f"a stage reading {', '.join(self.inputs) or 'only the upload'} has"
                f" {len(found)} inputs that are a {model.__name__}, not one"
            )
        return found[0]

    def read(self, model: type[M]) -> M:
        """The input artifact that is a `model`, loaded (see `input_of`)."""
        store = self.state.store
        return store.get_json(store.key_of(self.input_of(model).uri), model)


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
