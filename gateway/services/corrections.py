"""Corrections to a job's result: list them, add one (reassign a segment or words to a
speaker, fix text), undo one. Naming a speaker, which may also keep their voice, is in
gateway/services/voiceprints.py (`rename_speaker`).

Corrections are records of their own (the stage artifacts stay as the models made them),
applied on every read (gateway/services/transcripts.py); a correction's indices mean
something only for the merged result it was made on, so each records that result's hash.
Adding or undoing one sends the job's embed stage again, so search finds the words as
they read now.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from core.artifacts import MeetingResult
from core.corrections import (
    REASSIGN,
    Correction,
    CorrectionOutOfRange,
    check_fix_text,
    check_reassign,
    undo_blocked_by,
)
from core.errors import Conflict, NotFound
from gateway.http.errors import InvalidRequest
from gateway.services.container import Services
from gateway.services.search import resend_embed
from gateway.services.transcripts import corrected_result


async def list_corrections(services: Services, job_id: str, owner: str | None) -> list[Correction]:
    """The job's corrections, oldest first; NotFound for another tenant's job."""
    await services.jobs.get_job(job_id, owner)
    return await services.corrections.list_corrections(job_id, owner)


async def add_correction(
    services: Services, job_id: str, kind: str, fields: Mapping[str, Any], owner: str | None
) -> Correction:
    """Record a correction of `kind` (reassign, fix_text) to a succeeded job's result as
    it reads now; 422 when its segment or words are not in that result."""
    result = await corrected_result(services, job_id, owner)  # 404 / 409 first
    payload = dict(fields)
    try:
        if kind == REASSIGN:
            check_reassign(result, payload)
        else:
            check_fix_text(result, payload)
    except CorrectionOutOfRange as exc:
        raise InvalidRequest(str(exc)) from None
    merge = await services.records.current_artifact(
        job_id, services.graph.producer(MeetingResult).name
    )
    if merge is not None:  # the indices mean something only for this merged result
        payload["merge_sha256"] = merge.sha256
    added = await services.corrections.add_correction(job_id, kind, payload, owner)
    await resend_embed(services, job_id)  # search finds the corrected words
    return added


async def undo_correction(
    services: Services, job_id: str, correction_id: str, owner: str | None
) -> None:
    """Delete one correction, so the result reads as if it had never been made. Conflict
    when it split a segment and later corrections point at segments by their new
    positions: those are undone first, the latest first."""
    await services.jobs.get_job(job_id, owner)  # another tenant's job: 404 like a missing one
    corrections = await services.corrections.list_corrections(job_id, owner)
    if not any(c.id == correction_id for c in corrections):
        raise NotFound(f"job {job_id} has no correction {correction_id}")
    merge = await services.records.current_artifact(
        job_id, services.graph.producer(MeetingResult).name
    )
    if merge is not None:
        store = services.store
        result = await asyncio.to_thread(store.get_json, store.key_of(merge.uri), MeetingResult)
        blocked = undo_blocked_by(
            result, corrections, correction_id, services.graph, basis=merge.sha256
        )
        if blocked:
            raise Conflict(
                f"correction {correction_id} split a segment, so the {len(blocked)} segment"
                " correction(s) made after it point at segments by their new positions; undo"
                f" those first, the latest first: {', '.join(c.id for c in reversed(blocked))}"
            )
    await services.corrections.delete_correction(job_id, correction_id, owner)
    await resend_embed(services, job_id)
