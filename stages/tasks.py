"""The thin Taskiq side of the stages: load inputs, call the stage's `run`, store, record.

Every stage task takes a job id. One generic runner does the bookkeeping (lease, events,
the stores, artifact keys, reuse); each stage contributes a `StageSpec` (stages/contract.py):
its parameters and how to compute its artifact. The job runs as the graph declares
(core/graph.py): when a stage succeeds, the same transaction that records it says which
stages now have all their inputs, and this worker sends those (fan-out after decode, fan-in
at merge). taskiq-pipelines is not used for this: its pipelines are linear chains decided
in the message, and a stage with two inputs must be started by whichever input finishes
last, which only the database can decide atomically.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import traceback
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from taskiq import AsyncBroker, Context, TaskiqDepends

from core.artifacts import ArtifactRecord, DecodedAudio, Transcript
from core.errors import ScribeError, StageFailed
from core.events import JobEvent
from core.graph import StageDecl, StageGraph
from core.jobs import Job, Speaker, SpeakerGovernance
from core.keys import artifact_key
from events.queue import send_stages, task_name
from stages import compute
from stages.contract import StageInput, StageSpec
from stages.recovery import Heartbeat, backoff_s, is_transient, publish_terminal_once, retrying
from stages.runtime import ProgressPump, WorkerState, monotonic
from storage.artifacts import artifact_dir
from storage.leases import LeaseRefusal

log = logging.getLogger("scribe.stages")


def _now() -> datetime:
    return datetime.now(UTC)


@functools.cache
def spec_of(decl: StageDecl) -> StageSpec:
    """The StageSpec a declaration names ("module:attribute"), imported on first use."""
    module, _, attr = decl.spec.partition(":")
    spec = getattr(importlib.import_module(module), attr)
    if not isinstance(spec, StageSpec):
        raise TypeError(f"{decl.spec} (stage {decl.name}) is not a StageSpec")
    return spec


# Sends the given stages of a job to the queue.
Dispatch = Callable[[str, tuple[str, ...]], Awaitable[None]]


class StaleDelivery(Exception):
    """This delivery of a stage message must not run the stage: another worker holds its
    lease, a stage it reads is not done, the stage or the job has finished, or the job is
    gone. Raising it drops this copy of the message (the live one carries on)."""


async def run_stage(
    state: WorkerState, stage: str, job_id: str, dispatch: Dispatch | None = None
) -> str:
    """Run one stage of one job under its lease, reusing a stored artifact when inputs and
    params match; transient failures are retried in place, permanent ones fail the job.
    Then `dispatch` the stages this one was the last input of (None: run this one only)."""
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
            outcome = await retrying(
                settings,
                "recording the stage",
                lambda: leases.succeed(job_id, stage, owner, record.id, reused=reused),
            )
            if outcome is None:
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
        if outcome.job_done:
            done = JobEvent(type="job.succeeded", job_id=job_id)
            await retrying(
                settings, "announcing the result", lambda: publish_terminal_once(bus, leases, done)
            )
        if outcome.ready and dispatch is not None:
            # Lost if this process dies right here: the reaper sends what is ready and not
            # queued once the job has been quiet for stall_after_s.
            ready = outcome.ready
            await retrying(settings, "queueing the next stages", lambda: dispatch(job_id, ready))
    finally:
        state.tasks_done += 1
        state.models.release()
    return job_id


async def _produce(state: WorkerState, stage: str, job: Job) -> tuple[ArtifactRecord, bool]:
    """The stage's artifact: the stored one when its key is recorded and its object exists,
    else computed (in a thread) and recorded. Idempotent: the key is a function of the
    inputs, params and model, and recording a key twice returns the first record."""
    job_id = job.id
    decl = state.graph[stage]
    inputs: dict[str, ArtifactRecord] = {}
    for name in decl.inputs:
        found = await state.records.current_artifact(job_id, name)
        if found is None:
            raise StageFailed(stage, f"the {name} stage has no stored result for this job")
        inputs[name] = found
    spec = spec_of(decl)
    params, model = await spec.describe(state, job)
    recorded = spec.recorded(params)
    # A stage that reads only the upload is keyed by the upload's hash.
    input_hashes = [inputs[n].sha256 for n in decl.inputs] or [job.upload_sha256]
    key = artifact_key(stage, inputs=input_hashes, params=recorded, model=model)
    key_dir = artifact_dir(job_id, stage, key)
    record = await state.records.find_artifact(job_id, stage, key)
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
    record = await state.records.record_artifact(
        job_id=job_id,
        stage=stage,
        key=key,
        uri=stored.uri,
        sha256=stored.sha256,
        size_bytes=stored.size_bytes,
        params=recorded,
        model=model,
        inputs=[r.id for r in inputs.values()],
        started_at=started_at,
        finished_at=_now(),
        worker=state.name,
    )
    return record, False


def _refused(stage: str, job_id: str, refusal: LeaseRefusal) -> str:
    """A delivery that may not run: done with it quietly when the stage already succeeded
    (what follows was sent then), else drop it with StaleDelivery."""
    if refusal.job_status is None:
        log.warning("job %s is gone; dropping its %s task", job_id, stage)
        raise StaleDelivery(f"{job_id}: no such job")
    if refusal.stage_status == "succeeded":
        # A redelivery: the stages it was the last input of were decided when it succeeded.
        log.info("job %s: %s already done", job_id, stage)
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
    """Copy the facts the job list shows onto the job row: the duration from the decoded
    audio, the language from the transcript (whichever stages of the graph make them)."""
    output = state.graph[stage].output
    if output is not DecodedAudio and output is not Transcript:
        return
    doc = await asyncio.to_thread(state.store.get_dict, state.store.key_of(record.uri))
    if output is DecodedAudio:
        await state.jobs.set_job_info(job_id, duration_s=doc.get("duration_s"))
    else:
        await state.jobs.set_job_info(job_id, language=doc.get("language"))


# ---------------------------------------------------------------- registration


def _state(context: Context) -> WorkerState:
    state: WorkerState = context.state.scribe
    return state


def _stage_task(stage: str) -> Callable[..., Awaitable[str]]:
    async def task(job_id: str, context: Annotated[Context, TaskiqDepends()]) -> str:
        broker = context.broker

        async def dispatch(job: str, stages: tuple[str, ...]) -> None:
            await send_stages(broker, job, stages)

        return await run_stage(_state(context), stage, job_id, dispatch)

    task.__name__ = f"{stage}_task"
    return task


async def enroll_task(
    speaker_id: str,
    name: str,
    clip_keys: list[str],
    governance: dict[str, Any],
    max_duration_s: float | None,
    context: Annotated[Context, TaskiqDepends()],
) -> Speaker:
    """The speaker row made from the clips; the result backend keeps it as JSON, and the
    gateway reads it back as a Speaker (gateway/services/voiceprints.py)."""
    state = _state(context)
    rules = SpeakerGovernance.model_validate(governance)
    try:
        embedding, model = await asyncio.to_thread(compute.enroll, state, clip_keys, max_duration_s)
    finally:
        state.models.release()
    speaker = await state.speakers.create_speaker(
        speaker_id=speaker_id,
        name=name,
        model=model,
        embedding=embedding,
        clip_uris=[state.store.uri(k) for k in clip_keys],
        owner=rules.owner,
        consent=rules.consent(),
        expires_at=rules.expires_at,
    )
    return speaker


def register_tasks(broker: AsyncBroker, graph: StageGraph) -> None:
    """Explicit registration (no autodiscovery): one task per stage of the graph, plus
    enrollment. Each stage's implementation is imported here, so a graph naming one that
    does not exist fails at the worker's start, not at its first job."""
    for decl in graph:
        spec_of(decl)
        broker.register_task(_stage_task(decl.name), task_name=task_name(decl.name))
    broker.register_task(enroll_task, task_name="scribe.enroll")
