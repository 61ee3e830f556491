"""The stage graph: every stage declared once, and everything else derived from it.

A `StageDecl` says what a stage is: its name, what a person reads for it in each language
of the page, the stages whose artifacts it reads, the model of its output artifact, the
engine it needs, whether the job's result waits for it, and where the worker finds its
implementation (a `stages.contract.StageSpec`, named by import path so that the gateway,
which never imports model code, can read the graph too).

Stage rows, the queue, leases, the reaper, replay, the API's stage list, the page and the
CLI read a `StageGraph`; none spells a list of stages, nor the name of one: code that needs
"the stage that makes the merged result" asks `graph.producer(MeetingResult)`. Which graph a
deployment runs is a setting (`SCRIBE_STAGE_GRAPH`, an import path); every process loads it
with `load_graph(settings.stage_graph)` and hands it on (no store or loop falls back to a
graph of its own), so a test can run a real job through a graph with a stage of its own.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pydantic import BaseModel

from core.artifacts import (
    DecodedAudio,
    Diarization,
    Identification,
    MeetingResult,
    SearchPassages,
    Summary,
    Transcript,
)
from core.settings import ModelName

# The languages of the page (web/src/i18n): a stage's labels have each of them.
LANGUAGES = ("en", "fr")


@dataclass(frozen=True)
class StageDecl:
    name: str
    # What a person reads, by language: {"en": "Transcribing", "fr": "Transcription"}.
    labels: dict[str, str] = field(hash=False)
    inputs: tuple[str, ...]  # the stages whose artifacts it reads; () reads the upload
    output: type[BaseModel]  # the model of its artifact
    spec: str  # "module:attribute" of its StageSpec, imported by workers only
    engine: ModelName | None = None  # the model it loads, if any
    # The job's result waits for it. A stage that does not (search indexing) runs after
    # the job has succeeded; its failure is reported without failing the job.
    result: bool = True

    def __post_init__(self) -> None:
        missing = [lang for lang in LANGUAGES if not self.labels.get(lang)]
        if missing:
            raise ValueError(f"stage {self.name!r} has no label in {', '.join(missing)}")

    @property
    def label(self) -> str:
        """The English label."""
        return self.labels["en"]


class StageGraph:
    """Stages in an order where each comes after its inputs."""

    def __init__(self, stages: Iterable[StageDecl]) -> None:
        self._stages: dict[str, StageDecl] = {}
        for decl in stages:
            if decl.name in self._stages:
                raise ValueError(f"stage {decl.name!r} is declared twice")
            for name in decl.inputs:
                if name not in self._stages:
                    raise ValueError(
                        f"stage {decl.name!r} reads {name!r}, which is not declared before it"
                    )
                if decl.result and not self._stages[name].result:
                    raise ValueError(
                        f"stage {decl.name!r} is part of the result but reads {name!r},"
                        " which runs after the result"
                    )
            self._stages[decl.name] = decl
        if not self._stages:
            raise ValueError("a stage graph needs at least one stage")
        if not any(d.result for d in self._stages.values()):
            raise ValueError("a stage graph needs at least one stage the result waits for")

    def __iter__(self) -> Iterator[StageDecl]:
        return iter(self._stages.values())

    def __contains__(self, name: object) -> bool:
        return name in self._stages

    def __getitem__(self, name: str) -> StageDecl:
        try:
            return self._stages[name]
        except KeyError:
            raise KeyError(f"unknown stage {name!r}; stages are {', '.join(self.names)}") from None

    def __len__(self) -> int:
        return len(self._stages)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._stages)

    def dependents(self, name: str) -> tuple[str, ...]:
        """The stages that read `name` directly."""
        return tuple(d.name for d in self if name in d.inputs)

    def downstream(self, name: str) -> tuple[str, ...]:
        """`name` and every stage that depends on it, directly or not, in graph order:
        what a replay of `name` runs again."""
        found = {self[name].name}
        for decl in self:
            if any(i in found for i in decl.inputs):
                found.add(decl.name)
        return tuple(n for n in self.names if n in found)

    def producer(self, model: type[BaseModel]) -> StageDecl:
        """The stage whose artifact is a `model` (its declared output, exactly that class):
        what code that needs "the merged result" or "the diarization" asks, rather than
        spelling a stage name. An error when no stage or several make one."""
        found = self.find_producer(model)
        if found is None:
            raise LookupError(f"no stage of the graph makes {model.__name__}")
        return found

    def find_producer(self, model: type[BaseModel]) -> StageDecl | None:
        """Like `producer`, for an artifact a graph may do without (search passages): None
        when no stage makes one; still an error when several do."""
        found = [d for d in self if d.output is model]
        if len(found) > 1:
            which = ", ".join(d.name for d in found)
            raise LookupError(f"several stages of the graph make {model.__name__}: {which}")
        return found[0] if found else None

    @property
    def roots(self) -> tuple[str, ...]:
        """The stages that read only the upload: where a job starts."""
        return tuple(d.name for d in self if not d.inputs)

    @property
    def result_stages(self) -> tuple[str, ...]:
        return tuple(d.name for d in self if d.result)

    def with_stage(self, decl: StageDecl) -> StageGraph:
        """This graph with one more stage (after the stages it reads)."""
        return StageGraph([*self, decl])


DEFAULT_GRAPH = StageGraph(
    [
        StageDecl(
            "decode", {"en": "Decoding", "fr": "Décodage"}, (), DecodedAudio,
            "stages.specs:DECODE",
        ),
        StageDecl(
            "diarize", {"en": "Finding speakers", "fr": "Repérage des intervenants"},
            ("decode",), Diarization, "stages.specs:DIARIZE", engine="diarizer",
        ),
        StageDecl(
            "transcribe", {"en": "Transcribing", "fr": "Transcription"}, ("decode",),
            Transcript, "stages.specs:TRANSCRIBE", engine="transcriber",
        ),
        StageDecl(
            "identify", {"en": "Naming speakers", "fr": "Identification"}, ("diarize",),
            Identification, "stages.specs:IDENTIFY", engine="encoder",
        ),
        StageDecl(
            "merge", {"en": "Merging", "fr": "Assemblage"},
            ("decode", "diarize", "transcribe", "identify"), MeetingResult, "stages.specs:MERGE",
        ),
        # Search indexing: after the result, so a transcript never waits for it.
        StageDecl(
            "embed", {"en": "Indexing for search", "fr": "Indexation pour la recherche"},
            ("merge",), SearchPassages, "stages.specs:EMBED", engine="text_embedder",
            result=False,
        ),
        # Summary, decisions, action items: after the result, and after embed so that a
        # correction's one replay of embed (gateway/services/search.py) runs it again too.
        StageDecl(
            "summarize", {"en": "Summarizing", "fr": "Résumé"}, ("merge", "embed"), Summary,
            "stages.specs:SUMMARIZE", engine="language_model", result=False,
        ),
    ]
)  # fmt: skip


@functools.cache
def load_graph(path: str) -> StageGraph:
    """The StageGraph at `path` ("module:attribute"), e.g. Settings.stage_graph."""
    module, _, attr = path.partition(":")
    graph = getattr(importlib.import_module(module), attr or "GRAPH")
    if not isinstance(graph, StageGraph):
        raise TypeError(f"{path} is not a StageGraph")
    return graph
