"""A 2-hour meeting (about 20,000 words, four speakers) stored the way the stages leave it,
for the page's budgets: it must open and scroll without stalling."""

from __future__ import annotations

import random

from core.artifacts import (
    DecodedAudio,
    MeetingResult,
    ProbeInfo,
    ResultSegment,
    ResultSpeaker,
    ResultWord,
)
from gateway.services import Services
from storage.artifacts import artifact_dir
from tests.integration.stored_jobs import queued_job, record_artifact, succeed_job, wav_bytes

HOURS = 2.0
WORDS = 20_000
VOCABULARY = [
    "the",
    "budget",
    "review",
    "next",
    "quarter",
    "we",
    "should",
    "plan",
    "hiring",
    "roadmap",
    "customers",
    "release",
    "meeting",
    "notes",
    "action",
    "item",
    "follow",
    "up",
    "design",
    "migration",
    "database",
    "latency",
    "team",
    "decision",
    "agree",
    "deadline",
    "risk",
    "launch",
    "feedback",
    "metrics",
    "growth",
    "support",
]


def long_result(job_id: str, *, seed: int = 14) -> MeetingResult:
    """`WORDS` words over `HOURS` hours: lines of 6-16 words, a speaker keeping the floor
    for one to four lines (so paragraphs hold several lines)."""
    rng = random.Random(seed)
    duration = HOURS * 3600
    step = duration / WORDS
    segments: list[ResultSegment] = []
    speaker = "S1"
    left_on_floor = 0
    n = 0
    while n < WORDS:
        if left_on_floor == 0:
            speaker = rng.choice([s for s in ("S1", "S2", "S3", "S4") if s != speaker])
            left_on_floor = rng.randint(1, 4)
        left_on_floor -= 1
        count = min(rng.randint(6, 16), WORDS - n)
        words = []
        for j in range(count):
            start = (n + j) * step
            text = rng.choice(VOCABULARY)
            if j == count - 1:
                text += "."
            words.append(
                ResultWord(
                    start=round(start, 3),
                    end=round(start + step * 0.8, 3),
                    word=f" {text.capitalize() if j == 0 else text}",
                    probability=0.9,
                    speaker=speaker,
                )
            )
        segments.append(
            ResultSegment(
                start=words[0].start,
                end=words[-1].end,
                speaker=speaker,
                text="".join(w.word for w in words).strip(),
                words=words,
            )
        )
        n += count
    talk: dict[str, float] = {}
    for s in segments:
        talk[s.speaker] = talk.get(s.speaker, 0.0) + s.end - s.start
    return MeetingResult(
        job_id=job_id,
        duration_s=duration,
        language="en",
        speakers=[ResultSpeaker(id=k, talk_time_s=round(v, 1)) for k, v in sorted(talk.items())],
        segments=segments,
    )


async def long_job(services: Services) -> str:
    """A succeeded job holding `long_result` (its audio: one second, the player is not
    what is measured)."""
    audio = wav_bytes()
    job_id = await queued_job(services, audio)
    wav = services.store.put_bytes(f"{artifact_dir(job_id, 'decode', 'long1')}/audio.wav", audio)
    decoded = DecodedAudio(
        audio_uri=wav.uri,
        audio_sha256=wav.sha256,
        num_samples=16000,
        duration_s=1.0,
        source=ProbeInfo(format="wav"),
    )
    await record_artifact(services, job_id, "decode", "long1", decoded)
    await record_artifact(services, job_id, "merge", "long3", long_result(job_id))
    await succeed_job(services, job_id)
    return job_id
