"""How well identification does in use, from the corrections people make.

A rename of a speaker that identify had named is a confirmation when it names the same
person (same enrolled id, or the same name) and a correction otherwise; a rename of a
speaker identify left unnamed is a correction too (a miss). Only the latest rename of each
speaker of each job counts, and figures are kept per embedding model id, since a new model
has its own accuracy.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from core.artifacts import Identification
from core.corrections import RENAME_SPEAKER
from gateway.services.container import Services


@dataclass(frozen=True)
class Accuracy:
    embedding_model: str | None
    renames: int  # speakers renamed (latest rename per speaker and job)
    confirmed: int  # identify had named the same person
    corrected_wrong_name: int  # identify had named someone else
    corrected_unnamed: int  # identify had left the speaker unnamed
    confirmation_rate: float | None  # confirmed / speakers identify had named


def tally(identification: Identification, renames: list[dict[str, Any]]) -> dict[str, int]:
    """Counts for one job: `renames` are rename_speaker payloads, oldest first."""
    latest = {r.get("speaker"): r for r in renames if r.get("speaker")}
    matches = {m.label: m for m in identification.matches}
    out = {"renames": 0, "confirmed": 0, "corrected_wrong_name": 0, "corrected_unnamed": 0}
    for label, r in latest.items():
        m = matches.get(str(label))
        if m is None:
            continue
        out["renames"] += 1
        if m.speaker_id is None:
            out["corrected_unnamed"] += 1
        elif (r.get("speaker_id") and r.get("speaker_id") == m.speaker_id) or (
            not r.get("speaker_id") and r.get("name") == m.name
        ):
            out["confirmed"] += 1
        else:
            out["corrected_wrong_name"] += 1
    return out


async def accuracy(services: Services, owner: str | None) -> list[Accuracy]:
    """The figures of the owner's jobs, per embedding model, ordered by model id."""
    store = services.store
    totals: dict[str | None, dict[str, int]] = {}
    identify = services.graph.producer(Identification).name
    # A tenant's figures come from its own jobs' corrections only.
    for uri, renames in await services.corrections.identify_feedback(
        identify, RENAME_SPEAKER, owner
    ):
        ident = await asyncio.to_thread(store.get_json, store.key_of(uri), Identification)
        counts = tally(ident, renames)
        acc = totals.setdefault(ident.embedding_model, dict.fromkeys(counts, 0))
        for k, v in counts.items():
            acc[k] += v
    out = []
    for model, c in totals.items():
        named = c["confirmed"] + c["corrected_wrong_name"]
        out.append(
            Accuracy(
                embedding_model=model,
                renames=c["renames"],
                confirmed=c["confirmed"],
                corrected_wrong_name=c["corrected_wrong_name"],
                corrected_unnamed=c["corrected_unnamed"],
                confirmation_rate=c["confirmed"] / named if named else None,
            )
        )
    return sorted(out, key=lambda m: m.embedding_model or "")
