"""The pieces of a recording that the chunked Whisper decoder works on, and the bookkeeping
around them (pure arithmetic, no model).

The chunked decoder (stages/engines/whisper_chunked.py) cuts the speech the VAD found into chunks
of at most one Whisper window (30 s), decodes several chunks at once, and maps each word
back to the recording. A chunk is the concatenation of consecutive speech spans, as the
sequential decoder concatenates them: a recording whose speech fits one window gives one
chunk holding exactly the audio the sequential decoder sees.

The language is found once for the recording, not per chunk: the language probabilities of
the chunks of the first batch, weighted by their length, are added up and the most
probable language decodes every chunk (docs/models.md, "Chunked decoding").
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

Span = tuple[int, int]  # [start, end) in samples of the recording


@dataclass(frozen=True)
class Chunk:
    """Speech spans of the recording, in order, decoded as one piece of audio."""

    spans: tuple[Span, ...]

    @property
    def samples(self) -> int:
        return sum(end - start for start, end in self.spans)

    @property
    def start(self) -> int:
        return self.spans[0][0]

    @property
    def end(self) -> int:
        return self.spans[-1][1]

    def audio(self, recording: np.ndarray) -> np.ndarray:
        if len(self.spans) == 1:
            start, end = self.spans[0]
            return recording[start:end]
        return np.concatenate([recording[start:end] for start, end in self.spans])

    def to_recording(self, t: float, sample_rate: int, span: int | None = None) -> float:
        """A time inside the chunk (seconds from its first sample) as a time of the
        recording. `span` pins the span it falls in (both ends of a word map through the
        span of its middle, so a word never straddles a cut-out silence)."""
        if span is None:
            span = self.span_at(t, sample_rate)
        offset = sum(end - start for start, end in self.spans[:span])
        start, end = self.spans[span]
        sample = start + min(max(t * sample_rate - offset, 0.0), end - start)
        return sample / sample_rate

    def tail(self, t: float, sample_rate: int) -> Chunk | None:
        """What is left of the chunk from its time `t` on (None when nothing is)."""
        skip = round(t * sample_rate)
        spans: list[Span] = []
        for start, end in self.spans:
            if skip >= end - start:
                skip -= end - start
                continue
            spans.append((start + max(skip, 0), end))
            skip = 0
        return Chunk(tuple(spans)) if spans else None

    def span_at(self, t: float, sample_rate: int) -> int:
        """Index of the span that time `t` of the chunk falls in (the last one past its end)."""
        ends = np.cumsum([end - start for start, end in self.spans])
        return min(bisect.bisect_right(ends.tolist(), t * sample_rate), len(self.spans) - 1)


def build_chunks(spans: Iterable[Span], max_samples: int) -> list[Chunk]:
    """Consecutive speech spans joined into chunks of at most `max_samples` each.

    Spans are taken in order and a chunk is closed when the next span would not fit; a
    span longer than `max_samples` on its own (the VAD is asked for none) is cut into
    pieces of `max_samples`. Empty spans are dropped."""
    if max_samples <= 0:
        raise ValueError("max_samples must be positive")
    chunks: list[Chunk] = []
    current: list[Span] = []
    filled = 0
    for start, end in spans:
        while end - start > max_samples:  # longer than a window: hard cuts
            if current:
                chunks.append(Chunk(tuple(current)))
                current, filled = [], 0
            chunks.append(Chunk(((start, start + max_samples),)))
            start += max_samples
        if end <= start:
            continue
        if filled + (end - start) > max_samples:
            chunks.append(Chunk(tuple(current)))
            current, filled = [], 0
        current.append((start, end))
        filled += end - start
    if current:
        chunks.append(Chunk(tuple(current)))
    return chunks


def vote_language(
    detections: Sequence[tuple[Sequence[tuple[str, float]], float]],
) -> tuple[str, float]:
    """The recording's language from per-chunk detections: each chunk's probabilities
    (language, probability), weighted by its `weight` (its seconds of speech), are
    summed; returns the most probable language and its weighted mean probability."""
    totals: dict[str, float] = {}
    weight_sum = 0.0
    for probs, weight in detections:
        if weight <= 0:
            continue
        weight_sum += weight
        for lang, p in probs:
            totals[lang] = totals.get(lang, 0.0) + weight * p
    if not totals:
        raise ValueError("no detection with a positive weight")
    # Ties go to the language named first by the first chunk (dicts keep insertion order).
    best = max(totals, key=lambda lang: totals[lang])
    return best, totals[best] / weight_sum


def resume_frame(
    seek: int, frames: int, single_timestamp_ending: bool, last_word_end: float | None, fps: int
) -> int | None:
    """Where decoding a chunk must go on, in its frames, or None when the chunk is done.

    The sequential decoder's rule for one window: `seek` is where faster-whisper's splitter
    left it (the window's end, or the last pair of timestamps when the text stopped there,
    leaving the end of the window unheard); unless the text ended on a single timestamp
    (nothing more to hear), the end of the last timed word is where the next window
    starts. A chunk is decoded once, so what is left of it is decoded again the same way
    (each time from further on)."""
    if not single_timestamp_ending and last_word_end is not None and last_word_end > 0:
        seek = round(last_word_end * fps)
    return seek if 0 < seek < frames else None
