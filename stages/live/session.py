"""Following one live meeting (docs/live.md): read its chunks as the gateway stores them,
run the streaming recognizer and the live speakers on them, publish each pass as a
`live.caption` event on the job's stream, and when the meeting ends write the draft
(`LiveDraft`) and publish `live.ended`. A meeting with no new audio for `idle_end_s` is
ended here, as if Stop was pressed (the socket may be gone for good).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from taskiq import AsyncBroker

from core.artifacts import LiveDraft, LiveDraftLine
from core.events import Caption, CaptionWord, JobEvent
from core.keys import artifact_key
from events.live import REFRESH_S, LiveRoom, end_meeting
from stages import identify
from stages.live.asr import LocalAgreement, Pass, transcriber_words
from stages.live.speakers import OnlineSpeakers, split_at_pauses
from stages.runtime import WorkerState
from storage.live import (
    BYTES_PER_SECOND,
    LIVE_DRAFT_STAGE,
    LiveRecording,
    LiveSession,
    draft_key,
    session_key,
)

log = logging.getLogger("scribe.live")

POLL_S = 0.2


def _resume_point(recording: LiveRecording, window_s: float) -> tuple[int, int]:
    """(first chunk to read, bytes before it). From the start, unless more than a window
    is stored already (a worker taking over from one that died): then the last window,
    since captions are for what is being said now."""
    sizes = recording.chunk_sizes()
    keep = int(window_s * BYTES_PER_SECOND)
    seq, tail = len(sizes), 0
    while seq > 0 and tail + sizes[seq - 1] <= keep:
        seq -= 1
        tail += sizes[seq]
    return seq, sum(sizes[:seq])


def pcm_to_float(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


@dataclass
class Draft:
    lines: list[LiveDraftLine] = field(default_factory=list)

    def add(self, words: list[CaptionWord], speaker: str | None) -> None:
        if not words:
            return
        text = " ".join(w.word for w in words)
        last = self.lines[-1] if self.lines else None
        if last is not None and last.speaker == speaker:
            last.end, last.text = words[-1].end, f"{last.text} {text}"
            return
        self.lines.append(
            LiveDraftLine(start=words[0].start, end=words[-1].end, speaker=speaker, text=text)
        )


async def _speakers(
    state: WorkerState, owner: str | None, job_threshold: float | None
) -> OnlineSpeakers | None:
    """The meeting's speaker tracker, or None when no encoder can be loaded (captions
    then come without speakers rather than not at all)."""
    try:
        encoder = await asyncio.to_thread(state.models.encoder)
        model = await asyncio.to_thread(state.models.encoder_id)
    except Exception as exc:
        log.warning("live speakers off: the speaker encoder did not load (%s)", exc)
        return None
    prints = [
        identify.Voiceprint(id=i, name=n, model=m, embedding=e)
        for i, n, m, e in await state.speakers.voiceprints(owner)
    ]
    threshold, _ = identify.resolve_threshold(
        job_threshold,
        state.settings.identify_threshold,
        await state.calibration.calibrated_threshold(model),
        model,
    )
    return OnlineSpeakers(encoder, voiceprints=prints, threshold=threshold)


async def follow(state: WorkerState, room: LiveRoom, broker: AsyncBroker, job_id: str) -> None:
    """Follow the meeting until it ends; nothing when another worker follows it."""
    recording = LiveRecording(state.store, job_id)
    if not await asyncio.to_thread(recording.is_live):
        log.warning("job %s is not a live meeting; nothing to follow", job_id)
        return
    if await asyncio.to_thread(recording.stopped) is not None and await asyncio.to_thread(
        state.store.exists, draft_key(job_id)
    ):
        return  # ended and its draft written: a late delivery
    # One holder per delivery: a meeting sent twice (its socket reconnected before the
    # first delivery was read) is followed once, even by one process.
    holder = f"{state.name}/{uuid.uuid4().hex[:8]}"
    if not await room.hold(job_id, holder):
        log.info("job %s: another live worker follows it", job_id)
        return
    try:
        await _follow(state, room, broker, recording, holder)
    finally:
        await room.release(job_id, holder)


async def _follow(
    state: WorkerState,
    room: LiveRoom,
    broker: AsyncBroker,
    recording: LiveRecording,
    holder: str,
) -> None:
    job_id = recording.job_id
    live = state.settings.live
    job = await state.jobs.get_job(job_id)
    session = await asyncio.to_thread(state.store.get_json, session_key(job_id), LiveSession)
    transcriber = await asyncio.to_thread(state.models.transcriber)
    model_id = await asyncio.to_thread(state.models.transcriber_id)
    words_of = transcriber_words(
        transcriber, language=session.language or job.params.language, beam_size=live.beam_size
    )
    asr = LocalAgreement(words_of, window_s=live.window_s, step_s=live.step_s)
    speakers = await _speakers(state, job.owner, job.params.identify_threshold)
    draft = Draft()

    seq, before = await asyncio.to_thread(_resume_point, recording, live.window_s)
    asr.window_start = asr.committed_end = before / BYTES_PER_SECOND
    last_audio = last_hold = time.monotonic()
    shown: list[CaptionWord] = []

    async def caption(
        words: list[CaptionWord], unstable: list[CaptionWord], who: str | None
    ) -> None:
        name = speakers.name_of(who) if speakers is not None else None
        event = JobEvent(
            type="live.caption",
            job_id=job_id,
            caption=Caption(
                final=words,
                unstable=unstable,
                speaker=who,
                name=name,
                audio_s=round(asr.audio_s, 3),
            ),
        )
        try:
            await state.bus.publish(event)
        except Exception as exc:  # a caption lost to a Redis hiccup is not worth stopping for
            log.warning("job %s: could not publish a caption: %s", job_id, exc)

    async def publish(result: Pass) -> None:
        nonlocal shown
        if not result.final and result.unstable == shown:
            return
        shown = result.unstable
        if not result.final:
            await caption([], result.unstable, None)
            return
        # One speaker per stretch between pauses: a pass's final words may span a turn.
        runs = split_at_pauses(result.final, result.audio)
        for i, (words, audio) in enumerate(runs):
            who = await asyncio.to_thread(speakers.assign, audio) if speakers is not None else None
            draft.add(words, who)
            await caption(words, result.unstable if i == len(runs) - 1 else [], who)

    while True:
        got = False
        while await asyncio.to_thread(recording.has_chunk, seq):
            asr.add(pcm_to_float(await asyncio.to_thread(recording.get_chunk, seq)))
            seq += 1
            got = True
        now = time.monotonic()
        if got:
            last_audio = now
        if now - last_hold >= REFRESH_S:
            await room.hold(job_id, holder)
            last_hold = now
        if asr.ready():
            await publish(await asyncio.to_thread(asr.step))
            continue
        if got:
            continue
        if await asyncio.to_thread(recording.stopped) is not None:
            if not await asyncio.to_thread(recording.has_chunk, seq):
                break
            continue
        if now - last_audio >= live.idle_end_s:
            await end_meeting(
                store=state.store,
                jobs=state.jobs,
                bus=state.bus,
                broker=broker,
                graph=state.graph,
                job_id=job_id,
                reason="idle",
            )
            continue
        await asyncio.sleep(POLL_S)

    await publish(await asyncio.to_thread(asr.finish))
    if speakers is not None:  # names found late apply to the whole draft
        for line in draft.lines:
            line.name = speakers.name_of(line.speaker)
    stopped = await asyncio.to_thread(recording.stopped)
    duration = stopped.duration_s if stopped is not None else asr.audio_s
    result = LiveDraft(duration_s=duration, model=model_id, lines=draft.lines)
    stored = await asyncio.to_thread(state.store.put_json, draft_key(job_id), result)
    # Listed with the job's artifacts (GET /v1/jobs/{id}/artifacts), with its provenance,
    # beside the transcript that replaces it on the page.
    params = {"window_s": live.window_s, "step_s": live.step_s, "beam_size": live.beam_size}
    await state.records.record_artifact(
        job_id=job_id,
        stage=LIVE_DRAFT_STAGE,
        key=artifact_key(LIVE_DRAFT_STAGE, inputs=[stored.sha256], params=params, model=model_id),
        uri=stored.uri,
        sha256=stored.sha256,
        size_bytes=stored.size_bytes,
        params=params,
        model=model_id,
        inputs=[],
        started_at=datetime.fromtimestamp(session.started_at, UTC),
        finished_at=datetime.now(UTC),
        worker=state.name,
    )
    await state.bus.publish(
        JobEvent(
            type="live.ended",
            job_id=job_id,
            message=stopped.reason if stopped is not None else None,
            elapsed_s=round(duration, 3),
        )
    )
    log.info("job %s: live draft written (%d lines, %d passes)", job_id, len(draft.lines),
             asr.passes)  # fmt: skip
