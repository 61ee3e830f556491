"""The thin Taskiq side of the stages: load inputs, call the stage's `run`, store, record.

Every stage task takes a job id and returns it, so taskiq-pipelines hands it to the next
stage. One generic runner does the bookkeeping (events, job store, artifact keys, reuse);
each stage contributes a `StageSpec`: its parameters and how to compute its artifact.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from taskiq import AsyncBroker, Context, TaskiqDepends

from core.artifacts import STAGE_INPUTS, ArtifactRecord, Stage
from core.errors import NotFound, ScribeError, StageFailed
from core.events import JobEvent, ProgressCallback
from core.jobs import Job
from core.keys import artifact_key
from events.queue import task_name
from stages import compute
from stages.runtime import ProgressPump, WorkerState, monotonic
from storage.artifacts import StoredObject, artifact_dir

log = logging.getLogger("scribe.stages")


@dataclass
class StageInput:
    """What a stage's compute function receives (runs in a worker thread)."""

    state: WorkerState
    job: Job
    key_dir: str  # where to write this artifact's files
    inputs: dict[str, ArtifactRecord]
    params: dict[str, Any]
    progress: ProgressCallback


@dataclass(frozen=True)
class StageSpec:
    # (state, job) -> (params that define the output, model id): both go into the key.
    describe: Callable[[WorkerState, Job], Awaitable[tuple[dict[str, Any], str | None]]]
    compute: Callable[[StageInput], StoredObject]


def _now() -> datetime:
    return datetime.now(UTC)


async def _describe_decode(state: WorkerState, job: Job) -> tuple[dict[str, Any], str | None]:
    return {"sample_rate": 16000, "channels": 1}, None


async def _describe_diarize(state: WorkerState, job: Job) -> tuple[dict[str, Any], str | None]:
    p = job.params
    params = {
        "num_speakers": p.num_speakers,
        "min_speakers": p.min_speakers,
        "max_speakers": p.max_speakers,
    }
    return params, await asyncio.to_thread(state.models.diarizer_id)


async def _describe_transcribe(state: WorkerState, job: Job) -> tuple[dict[str, Any], str | None]:
    m = state.settings.models
    params = {
        "language": job.params.language,
        "beam_size": m.asr_beam_size,
        "vad_filter": True,
        "compute_type": m.asr_compute_type,
    }
    return params, await asyncio.to_thread(state.models.transcriber_id)


async def _describe_identify(state: WorkerState, job: Job) -> tuple[dict[str, Any], str | None]:
    threshold = job.params.identify_threshold
    if threshold is None:
        threshold = state.settings.identify_threshold
    prints = await state.jobs.voiceprints()
    # Enrolling or deleting a person changes the answer, so it changes the key.
    digest = hashlib.sha256(json.dumps(prints, sort_keys=True).encode()).hexdigest()[:16]
    model = await asyncio.to_thread(state.models.encoder_id)
    params = {"threshold": threshold, "voiceprints": digest, "voiceprint_list": prints}
    return params, model


async def _describe_merge(state: WorkerState, job: Job) -> tuple[dict[str, Any], str | None]:
    return {}, None


SPECS: dict[Stage, StageSpec] = {
    "decode": StageSpec(_describe_decode, compute.decode),
    "diarize": StageSpec(_describe_diarize, compute.diarize),
    "transcribe": StageSpec(_describe_transcribe, compute.transcribe),
    "identify": StageSpec(_describe_identify, compute.identify),
    "merge": StageSpec(_describe_merge, compute.merge),
}


def _recorded_params(params: dict[str, Any]) -> dict[str, Any]:
    # The voiceprint list is an input of identify, not a parameter worth storing per artifact.
    return {k: v for k, v in params.items() if k != "voiceprint_list"}


async def run_stage(state: WorkerState, stage: Stage, job_id: str) -> str:
    """Run one stage of one job, reusing a stored artifact when inputs and params match."""
    try:
        job = await state.jobs.get_job(job_id)
    except NotFound:
        log.warning("job %s is gone; dropping its %s task", job_id, stage)
        raise
    bus = state.bus
    started_clock = monotonic()
    await state.jobs.stage_started(job_id, stage, state.name)
    await bus.publish(JobEvent(type="stage.started", job_id=job_id, stage=stage))
    try:
        inputs: dict[str, ArtifactRecord] = {}
        for name in STAGE_INPUTS[stage]:
            record = await state.jobs.current_artifact(job_id, name)
            if record is None:
                raise StageFailed(stage, f"the {name} stage has no stored result for this job")
            inputs[name] = record
        spec = SPECS[stage]
        params, model = await spec.describe(state, job)
        input_hashes = (
            [job.upload_sha256]
            if stage == "decode"
            else [inputs[n].sha256 for n in STAGE_INPUTS[stage]]
        )
        key = artifact_key(stage, inputs=input_hashes, params=_recorded_params(params), model=model)
        key_dir = artifact_dir(job_id, stage, key)
        record = await state.jobs.find_artifact(job_id, stage, key)
        reused = record is not None and await asyncio.to_thread(
            state.store.exists, state.store.key_of(record.uri)
        )
        if not reused:
            started_at = _now()
            async with ProgressPump(bus, job_id, stage) as pump:
                stored = await asyncio.to_thread(
                    spec.compute,
                    StageInput(state, job, key_dir, inputs, params, pump.callback()),
                )
            record = await state.jobs.record_artifact(
                job_id=job_id,
                stage=stage,
                key=key,
                uri=stored.uri,
                sha256=stored.sha256,
                size_bytes=stored.size_bytes,
                params=_recorded_params(params),
                model=model,
                inputs=[r.id for r in inputs.values()],
                started_at=started_at,
                finished_at=_now(),
                worker=state.name,
            )
        assert record is not None
        await _after_stage(state, stage, job_id, record)
        await state.jobs.stage_succeeded(job_id, stage, record.id, reused=reused)
        elapsed = round(monotonic() - started_clock, 3)
        await bus.publish(
            JobEvent(
                type="stage.finished",
                job_id=job_id,
                stage=stage,
                reused=reused,
                elapsed_s=elapsed,
                progress=1.0,
            )
        )
        if stage == "merge":
            await state.jobs.job_succeeded(job_id)
            await bus.publish(JobEvent(type="job.succeeded", job_id=job_id))
    except Exception as exc:
        message = _message(stage, exc)
        log.error("job %s failed at %s: %s", job_id, stage, message)
        await state.jobs.stage_failed(job_id, stage, message)
        await bus.publish(
            JobEvent(type="stage.failed", job_id=job_id, stage=stage, message=message)
        )
        await bus.publish(JobEvent(type="job.failed", job_id=job_id, stage=stage, message=message))
        raise
    finally:
        state.tasks_done += 1
        state.models.release()
    return job_id


def _message(stage: str, exc: BaseException) -> str:
    if isinstance(exc, StageFailed):
        return exc.message
    if isinstance(exc, ScribeError):
        return exc.message
    log.debug("%s", "".join(traceback.format_exception(exc)))
    return f"internal error in {stage}: {type(exc).__name__}: {exc}"


async def _after_stage(state: WorkerState, stage: str, job_id: str, record: ArtifactRecord) -> None:
    """Copy the facts the job list shows (duration, language) onto the job row."""
    if stage not in ("decode", "transcribe"):
        return
    doc = await asyncio.to_thread(state.store.get_dict, state.store.key_of(record.uri))
    if stage == "decode":
        await state.jobs.set_job_info(job_id, duration_s=doc.get("duration_s"))
    else:
        await state.jobs.set_job_info(job_id, language=doc.get("language"))


# ---------------------------------------------------------------- registration


def _state(context: Context) -> WorkerState:
    state: WorkerState = context.state.scribe
    return state


def _stage_task(stage: Stage) -> Callable[..., Awaitable[str]]:
    async def task(job_id: str, context: Annotated[Context, TaskiqDepends()]) -> str:
        return await run_stage(_state(context), stage, job_id)

    task.__name__ = f"{stage}_task"
    return task


async def enroll_task(
    speaker_id: str,
    name: str,
    clip_keys: list[str],
    context: Annotated[Context, TaskiqDepends()],
) -> dict[str, Any]:
    state = _state(context)
    embedding, model = await asyncio.to_thread(compute.enroll, state, clip_keys)
    speaker = await state.jobs.create_speaker(
        speaker_id=speaker_id,
        name=name,
        model=model,
        embedding=embedding,
        clip_uris=[state.store.uri(k) for k in clip_keys],
    )
    return speaker.model_dump(mode="json")


def register_tasks(broker: AsyncBroker) -> None:
    """Explicit registration (no autodiscovery): one task per stage, plus enrollment."""
    for stage in SPECS:
        broker.register_task(_stage_task(stage), task_name=task_name(stage))
    broker.register_task(enroll_task, task_name="scribe.enroll")
