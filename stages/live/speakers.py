"""Live speakers: each stretch of final words is embedded (the speaker encoder, CAM++ by
default), given to the nearest speaker of the meeting so far or to a new one (online
clustering on cosine similarity to running centroids), and the meeting's speakers are named
against the tenant's voiceprints by the `identify` stage's own `run`, so its rules (one
person per speaker, a threshold below which a speaker stays unnamed) hold live too.

Pure logic over a `SpeakerEncoder`; the voiceprints and threshold are given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.artifacts import Diarization, DiarizedSpeaker
from core.events import CaptionWord
from stages import identify
from stages.engines.base import SAMPLE_RATE, SpeakerEncoder, l2_normalise

# A stretch shorter than this gives an unreliable embedding: it keeps the last speaker.
MIN_EMBED_S = 1.0
# A pause at least this long between two final words may be a change of speaker.
PAUSE_S = 0.5
# Cosine similarity to a centroid at or above which a stretch joins that speaker. Same-voice
# CAM++ pairs of a few seconds sit well above, different voices well below (docs/models.md).
JOIN_COSINE = 0.5


def split_at_pauses(
    words: list[CaptionWord], audio: np.ndarray | None, pause_s: float = PAUSE_S
) -> list[tuple[list[CaptionWord], np.ndarray | None]]:
    """The words (and their audio, which starts at the first word) cut at pauses, each
    piece with its own audio, so that each can be given its own speaker."""
    if not words:
        return []
    runs: list[list[CaptionWord]] = [[words[0]]]
    for prev, word in zip(words, words[1:], strict=False):
        if word.start - prev.end >= pause_s:
            runs.append([])
        runs[-1].append(word)
    origin = words[0].start
    out: list[tuple[list[CaptionWord], np.ndarray | None]] = []
    for run in runs:
        piece = None
        if audio is not None:
            a = max(0, int((run[0].start - origin) * SAMPLE_RATE))
            b = max(a, int((run[-1].end - origin) * SAMPLE_RATE))
            piece = audio[a:b]
        out.append((run, piece))
    return out


@dataclass
class _Speaker:
    label: str
    total: np.ndarray
    seconds: float = 0.0

    @property
    def centroid(self) -> np.ndarray:
        return l2_normalise(self.total)


@dataclass
class OnlineSpeakers:
    encoder: SpeakerEncoder
    voiceprints: list[identify.Voiceprint] = field(default_factory=list)
    threshold: float = identify.DEFAULT_THRESHOLD
    join_cosine: float = JOIN_COSINE
    speakers: list[_Speaker] = field(default_factory=list)
    last: str | None = None
    names: dict[str, str] = field(default_factory=dict)

    def assign(self, audio: np.ndarray | None) -> str | None:
        """The label of the stretch's speaker ("SPEAKER_1", ...)."""
        if audio is None or len(audio) < MIN_EMBED_S * SAMPLE_RATE:
            return self.last
        vector = l2_normalise(np.asarray(self.encoder.embed(audio), dtype=np.float64))
        seconds = len(audio) / SAMPLE_RATE
        best, score = None, -1.0
        for speaker in self.speakers:
            s = float(speaker.centroid @ vector)
            if s > score:
                best, score = speaker, s
        if best is None or score < self.join_cosine:
            best = _Speaker(f"SPEAKER_{len(self.speakers) + 1}", np.zeros_like(vector))
            self.speakers.append(best)
        best.total = best.total + vector * seconds
        best.seconds += seconds
        self.last = best.label
        self._name()
        return best.label

    def name_of(self, label: str | None) -> str | None:
        return self.names.get(label) if label else None

    def _name(self) -> None:
        if not self.voiceprints:
            return
        diarization = Diarization(
            turns=[],
            exclusive_turns=[],
            speakers=[
                DiarizedSpeaker(label=s.label, talk_time_s=s.seconds, embedding=s.centroid.tolist())
                for s in self.speakers
            ],
        )
        found = identify.run(
            diarization,
            self.voiceprints,
            threshold=self.threshold,
            embedding_model=self.encoder.model_id,
        )
        self.names = {m.label: m.name for m in found.matches if m.name}
