"""A person's corrections to a meeting result, applied on read; the artifacts stay as made.

Each correction is a record of a `kind` with a JSON `payload`. `apply_corrections` replays
them in order over a `MeetingResult` and returns a corrected copy: one small function per
kind, looked up in `APPLIERS`, so a new kind (reassign words, fix text) is one function and
one entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.artifacts import MeetingResult

RENAME_SPEAKER = "rename_speaker"


class Correction(BaseModel):
    """One stored correction, as the job store returns it."""

    id: str
    job_id: str
    kind: str
    payload: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None


class RenameSpeaker(BaseModel):
    """Payload of `rename_speaker`: label `speaker` ("S1") is `name` everywhere in the job.

    `diarize_sha256` pins the diarization the label belongs to: after a replay of
    `diarize`, "S1" may be someone else, so the rename no longer applies.
    """

    model_config = ConfigDict(extra="ignore")

    speaker: str
    name: str = Field(min_length=1, max_length=200)
    speaker_id: str | None = None
    diarize_sha256: str | None = None


def _rename_speaker(result: MeetingResult, payload: dict[str, Any]) -> MeetingResult:
    rename = RenameSpeaker.model_validate(payload)
    basis = result.provenance.get("diarize")
    if rename.diarize_sha256 and basis is not None and basis.sha256 != rename.diarize_sha256:
        return result
    if not any(s.id == rename.speaker for s in result.speakers):
        return result
    speakers = [
        s.model_copy(
            update={
                "name": rename.name,
                "speaker_id": rename.speaker_id,
                # A person said who this is: no longer a guess from a voiceprint.
                "confidence": None,
            }
        )
        if s.id == rename.speaker
        else s
        for s in result.speakers
    ]
    return result.model_copy(update={"speakers": speakers})


Applier = Callable[[MeetingResult, dict[str, Any]], MeetingResult]
APPLIERS: dict[str, Applier] = {
    RENAME_SPEAKER: _rename_speaker,
}


def apply_corrections(result: MeetingResult, corrections: Sequence[Correction]) -> MeetingResult:
    """The result with every correction applied, oldest first (a later one wins).

    Unknown kinds and payloads that no longer fit are skipped, not fatal: a result must
    always be readable, and a newer gateway may have written kinds this one does not know.
    """
    for correction in corrections:
        applier = APPLIERS.get(correction.kind)
        if applier is None:
            continue
        try:
            result = applier(result, correction.payload)
        except ValidationError:
            continue
    return result


def blend_voiceprints(old: Sequence[float], new: Sequence[float]) -> list[float]:
    """Mean of two L2-normalised embeddings, normalised again (both from the same model)."""
    if len(old) != len(new):
        return _unit(new)
    a, b = _unit(old), _unit(new)
    return _unit([x + y for x, y in zip(a, b, strict=True)])


def _unit(v: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v))
    return [float(x) / norm for x in v] if norm > 0 else [float(x) for x in v]
