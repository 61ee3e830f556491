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
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from taskiq import AsyncBroker, Context, TaskiqDepends

from core.artifacts import STAGE_INPUTS, STAGES, ArtifactRecord, Stage
from core.errors import ScribeError, StageFailed
from core.events import JobEvent, ProgressCallback
from core.jobs import Job, SpeakerGovernance
from core.keys import artifact_key
from events.queue import task_name
from stages import compute
from stages.identify import resolve_threshold
from stages.recovery import Heartbeat, backoff_s, is_transient, publish_terminal_once, retrying
from stages.runtime import ProgressPump, WorkerState, monotonic
from storage.artifacts import StoredObject, artifact_dir
from storage.leases import LeaseRefusal

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
    # Only the job owner's voiceprints: one tenant never names another's people.
    prints = await state.jobs.voiceprints(job.owner)
    # Enrolling or deleting a person changes the answer, so it changes the key.
    digest = hashlib.sha256(json.dumps(prints, sort_keys=True).encode()).hexdigest()[:16]
    model = await asyncio.to_thread(state.models.encoder_id)
    # job > SCRIBE_IDENTIFY_THRESHOLD > calibrated for this encoder > default
    threshold, source = resolve_threshold(
        job.params.identify_threshold,
        state.settings.identify_threshold,
        await state.jobs.calibrated_threshold(model),
    )
    params = {
        "threshold": threshold,
        "threshold_source": source,
        "voiceprints": digest,
        "voiceprint_list": prints,
    }
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


class StaleDelivery(Exception):
    """This delivery of a stage message must not run the stage: another worker holds its
    lease, an earlier stage is not done, the stage or the job has finished, or the job is
    gone. Raising it ends this copy of the pipeline (the live one carries on)."""


async def run_stage(state: WorkerState, stage: Stage, job_id: str) -> str:
    """Run one stage of one job under its lease, reusing a stored artifact when inputs and
    params match; transient failures are retried in place, permanent ones fail the job."""
    settings = state.settings
    leases = state.leases
    bus = state.bus
    owner = f"{state.name}/{uuid.uuid4().hex[:8]}"
    ttl = settings.lease_ttl_s
    try:
        grant = await retrying(
            settings, "taking the stage lease", lambda: leases.acquire(job_id, stage, owner, ttl)
        )
        if isinstance(grant, LeaseRefusal):
            return _refused(stage, job_id, grant)
        started_clock = monotonic()
        await _publish(state, JobEvent(type="stage.started", job_id=job_id, stage=stage))
        tries = 1
        async with Heartbeat(leases, job_id, stage, owner, ttl) as beat:
            while True:
                try:
                    job = await state.jobs.get_job(job_id)
                    record, reused = await _produce(state, stage, job)
                    await _after_stage(state, stage, job_id, record)
                    break
                except Exception as exc:
                    if beat.lost:
                        raise StaleDelivery(f"{job_id}/{stage}: lease lost") from exc
                    if not is_transient(exc) or tries >= settings.stage_max_attempts:
                        await _fail(state, stage, job_id, owner, exc, tries)
                        raise
                    await _retry_later(state, stage, job_id, owner, exc, tries)
                    tries += 1
            if beat.lost:
                raise StaleDelivery(f"{job_id}/{stage}: lease lost while computing")
            held = await retrying(
                settings,
                "recording the stage",
                lambda: leases.succeed(job_id, stage, owner, record.id, reused=reused),
            )
            if not held:
                raise StaleDelivery(f"{job_id}/{stage}: lease lost before recording")
        elapsed = round(monotonic() - started_clock, 3)
        await _publish(
            state,
            JobEvent(
                type="stage.finished",
                job_id=job_id,
                stage=stage,
                reused=reused,
                elapsed_s=elapsed,
                progress=1.0,
            ),
        )
        if stage == STAGES[-1]:
            done = JobEvent(type="job.succeeded", job_id=job_id)
            await retrying(
                settings, "announcing the result", lambda: publish_terminal_once(bus, leases, done)
            )
    finally:
        state.tasks_done += 1
        state.models.release()
    return job_id


async def _produce(state: WorkerState, stage: Stage, job: Job) -> tuple[ArtifactRecord, bool]:
    """The stage's artifact: the stored one when its key is recorded and its object exists,
    else computed (in a thread) and recorded. Idempotent: the key is a function of the
    inputs, params and model, and recording a key twice returns the first record."""
    job_id = job.id
    inputs: dict[str, ArtifactRecord] = {}
    for name in STAGE_INPUTS[stage]:
        found = await state.jobs.current_artifact(job_id, name)
        if found is None:
            raise StageFailed(stage, f"the {name} stage has no stored result for this job")
        inputs[name] = found
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
    if record is not None and await asyncio.to_thread(
        state.store.exists, state.store.key_of(record.uri)
    ):
        return record, True
    started_at = _now()
    async with ProgressPump(state.bus, job_id, stage) as pump:
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
    return record, False


def _refused(stage: str, job_id: str, refusal: LeaseRefusal) -> str:
    """A delivery that may not run: pass the job on when the stage is already done (the
    next stage decides for itself), else end this copy of the pipeline."""
    if refusal.job_status is None:
        log.warning("job %s is gone; dropping its %s task", job_id, stage)
        raise StaleDelivery(f"{job_id}: no such job")
    if refusal.job_status in ("queued", "running") and refusal.stage_status == "succeeded":
        log.info("job %s: %s already done; passing the job on", job_id, stage)
        return job_id
    if refusal.held_by_other:
        why = "another worker is running it"
    elif refusal.waiting_for:
        why = f"{refusal.waiting_for} is not done yet"
    else:
        why = f"the job is {refusal.job_status} and the stage {refusal.stage_status}"
    log.info("job %s: not running %s now: %s", job_id, stage, why)
    raise StaleDelivery(f"{job_id}/{stage}: {why}")


async def _publish(state: WorkerState, event: JobEvent) -> None:
    """Stage events are best effort: Redis restarting must not fail the stage itself
    (the job's final event is published with a guarantee, see publish_terminal_once)."""
    try:
        await retrying(state.settings, f"publishing {event.type}", lambda: state.bus.publish(event))
    except Exception as exc:
        log.warning("could not publish %s for job %s: %s", event.type, event.job_id, exc)


async def _retry_later(
    state: WorkerState, stage: str, job_id: str, owner: str, exc: BaseException, tries: int
) -> None:
    settings = state.settings
    delay = backoff_s(settings, tries)
    reason = _message(stage, exc)
    log.warning(
        "job %s: %s attempt %d failed (%s); retrying in %.1f s", job_id, stage, tries, reason, delay
    )
    try:
        await state.leases.note_retry(
            job_id, stage, owner, f"attempt {tries} failed: {reason}", settings.lease_ttl_s
        )
    except Exception as note_exc:  # the database may be the thing that is down
        log.warning("could not record the retry: %s", note_exc)
    await _publish(
        state,
        JobEvent(
            type="stage.progress",
            job_id=job_id,
            stage=stage,
            step=f"retrying (attempt {tries + 1} of {settings.stage_max_attempts})",
            message=reason,
        ),
    )
    await asyncio.sleep(delay)


async def _fail(
    state: WorkerState, stage: str, job_id: str, owner: str, exc: BaseException, tries: int
) -> None:
    """Record a failure for good and announce it. When the database cannot be reached
    even for this, the lease expires and the reaper hands the stage to another try."""
    message = _message(stage, exc)
    if is_transient(exc):
        message = f"{message} (gave up after {tries} attempts)"
    log.error("job %s failed at %s: %s", job_id, stage, message)
    settings = state.settings
    held = await retrying(
        settings, "recording the failure", lambda: state.leases.fail(job_id, stage, owner, message)
    )
    if not held:
        raise StaleDelivery(f"{job_id}/{stage}: lease lost before recording the failure")
    await _publish(
        state, JobEvent(type="stage.failed", job_id=job_id, stage=stage, message=message)
    )
    failed = JobEvent(type="job.failed", job_id=job_id, stage=stage, message=message)
    await retrying(
        settings,
        "announcing the failure",
        lambda: publish_terminal_once(state.bus, state.leases, failed),
    )


def _message(stage: str, exc: BaseException) -> str:
    if isinstance(exc, ScribeError):
        return exc.message
    log.debug("%s", "".join(traceback.format_exception(exc)))
    if is_transient(exc):
        return f"{stage} could not reach a service it needs ({type(exc).__name__}: {exc})"
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
    governance: dict[str, Any],
    max_duration_s: float | None,
    context: Annotated[Context, TaskiqDepends()],
) -> dict[str, Any]:
    state = _state(context)
    rules = SpeakerGovernance.model_validate(governance)
    try:
        embedding, model = await asyncio.to_thread(
            compute.enroll, state, clip_keys, max_duration_s
        )
    finally:
        state.models.release()
    speaker = await state.jobs.create_speaker(
        speaker_id=speaker_id,
        name=name,
        model=model,
        embedding=embedding,
        clip_uris=[state.store.uri(k) for k in clip_keys],
        owner=rules.owner,
        consent=rules.consent(),
        expires_at=rules.expires_at,
    )
    return speaker.model_dump(mode="json")


def register_tasks(broker: AsyncBroker) -> None:
    """Explicit registration (no autodiscovery): one task per stage, plus enrollment."""
    for stage in SPECS:
        broker.register_task(_stage_task(stage), task_name=task_name(stage))
    broker.register_task(enroll_task, task_name="scribe.enroll")
