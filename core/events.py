"""Typed progress events, published by stage tasks and streamed to clients over SSE."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field, PrivateAttr

EventType = Literal[
    "job.queued",
    "stage.started",
    "stage.progress",
    "stage.finished",
    "stage.failed",
    "job.succeeded",
    "job.failed",
    # Live meetings (docs/live.md): captions while the meeting runs, then its end.
    "live.caption",
    "live.ended",
]
TERMINAL_EVENTS: frozenset[str] = frozenset({"job.succeeded", "job.failed"})


class CaptionWord(BaseModel):
    """A word of a live caption; times in seconds from the start of the recording."""

    start: float
    end: float
    word: str


class Caption(BaseModel):
    """What a live pass over the recent audio found: `final` words, newly committed (they
    never change again), said by `speaker` (a label of the meeting, e.g. "SPEAKER_1"; `name`
    when the voice matched an enrolled person), and the `unstable` tail, which the next pass
    may change. `audio_s`: the recording's length when the pass ran."""

    final: list[CaptionWord] = Field(default_factory=list)
    unstable: list[CaptionWord] = Field(default_factory=list)
    speaker: str | None = None
    name: str | None = None
    audio_s: float = 0.0


class JobEvent(BaseModel):
    type: EventType
    job_id: str
    stage: str | None = None
    # stage.progress: fraction 0-1 of the stage; step names the model's sub-step.
    progress: float | None = None
    step: str | None = None
    message: str | None = None
    reused: bool | None = None  # stage.finished: the artifact already existed
    elapsed_s: float | None = None
    caption: Caption | None = None  # live.caption
    ts: float = Field(default_factory=time.time)
    # Assigned by the event store (Redis Stream id); used as the SSE `id`.
    id: str | None = None
    _json: str | None = PrivateAttr(default=None)

    def json_text(self) -> str:
        """`model_dump_json()`, computed once: a live event is one object handed to every
        SSE client of its job, and events are not changed once made."""
        if self._json is None:
            self._json = self.model_dump_json()
        return self._json


# Progress callback given to stage functions: progress(step, completed, total).
# Stage code never imports Redis; the task wrapper turns calls into JobEvents.
ProgressCallback = Callable[[str, float, float], None]


def no_progress(step: str, completed: float, total: float) -> None:
    """A ProgressCallback that ignores every call."""
