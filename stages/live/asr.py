"""Streaming recognition over a sliding window with the LocalAgreement commit policy of
whisper_streaming (Macháček et al., 2023): the window (the audio after the last final
word, plus a little before it) is transcribed again each time new audio came; a word is
final once two consecutive passes agree on it (the longest common prefix of their
hypotheses). What the last pass says beyond that prefix is shown as unstable.

The window is cut after the last final word once it is longer than `window_s`, so a pass
costs about the same however long the meeting is. Silence is skipped twice: a pass whose
new audio is quiet and that has nothing pending is not run at all, and the transcriber's
own VAD (faster-whisper's Silero) drops silence inside the window.

Pure logic over a `Transcriber` (stages/engines/base.py): no Redis, no storage.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from core.events import CaptionWord, no_progress
from stages.engines.base import SAMPLE_RATE, Transcriber

# RMS of int16-scaled audio under which new audio counts as quiet (about -50 dBFS).
QUIET_RMS = 0.003
# Kept before the last final word when the window is cut, so the next pass has context.
KEEP_BEFORE_S = 0.5


def _norm(word: str) -> str:
    return re.sub(r"[^\w']+", "", word.lower())


def agreed_prefix(previous: list[CaptionWord], current: list[CaptionWord]) -> int:
    """How many leading words two hypotheses share (compared without case or punctuation)."""
    n = 0
    for a, b in zip(previous, current, strict=False):
        if _norm(a.word) != _norm(b.word):
            break
        n += 1
    return n


@dataclass
class Pass:
    """What one pass changed: words that became final, the unstable rest, and the audio of
    the final words (for the speaker of this stretch)."""

    final: list[CaptionWord] = field(default_factory=list)
    unstable: list[CaptionWord] = field(default_factory=list)
    audio: np.ndarray | None = None


WordsOf = Callable[[np.ndarray], list[CaptionWord]]


def transcriber_words(transcriber: Transcriber, *, language: str | None, beam_size: int) -> WordsOf:
    """A `WordsOf` from a Transcriber: words with times from the start of the audio."""

    def words(audio: np.ndarray) -> list[CaptionWord]:
        transcript = transcriber.transcribe(
            audio, language=language, beam_size=beam_size, vad_filter=True, progress=no_progress
        )
        return [
            CaptionWord(start=w.start, end=w.end, word=w.word.strip())
            for seg in transcript.segments
            for w in seg.words
            if w.word.strip()
        ]

    return words


class LocalAgreement:
    def __init__(self, words_of: WordsOf, *, window_s: float = 12.0, step_s: float = 1.0) -> None:
        self.words_of = words_of
        self.window_s = window_s
        self.step_s = step_s
        self.window = np.zeros(0, dtype=np.float32)
        self.window_start = 0.0  # seconds from the start of the recording
        self.committed_end = 0.0
        self.pending: list[CaptionWord] = []  # the last pass's words after the final ones
        self.new_samples = 0  # audio added since the last pass
        self.quiet_new = True
        self.passes = 0

    @property
    def audio_s(self) -> float:
        return self.window_start + len(self.window) / SAMPLE_RATE

    def ready(self) -> bool:
        """Enough new audio for a pass."""
        return self.new_samples >= self.step_s * SAMPLE_RATE

    def add(self, audio: np.ndarray) -> None:
        """Append float32 samples in [-1, 1]."""
        if len(audio) == 0:
            return
        self.window = np.concatenate([self.window, audio.astype(np.float32, copy=False)])
        self.new_samples += len(audio)
        if float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) >= QUIET_RMS:
            self.quiet_new = False

    def step(self) -> Pass:
        """One pass over the window (or none, when it holds only silence)."""
        quiet = self.quiet_new
        self.new_samples, self.quiet_new = 0, True
        if quiet and not self.pending:
            self._cut(self.audio_s - KEEP_BEFORE_S)
            return Pass()
        self.passes += 1
        hypothesis = self._hypothesis()
        n = agreed_prefix(self.pending, hypothesis)
        final = hypothesis[:n]
        self.pending = hypothesis[n:]
        result = self._commit(final)
        result.unstable = list(self.pending)
        if not hypothesis:  # speech the VAD did not keep, or none: forget the window
            self._cut(self.audio_s - KEEP_BEFORE_S)
        elif len(self.window) / SAMPLE_RATE > self.window_s:
            self._cut(self.committed_end - KEEP_BEFORE_S)
            if len(self.window) / SAMPLE_RATE > self.window_s:  # nothing final for too long
                # Take the pending words as they are rather than let the window grow.
                forced = self._commit(self.pending)
                result.final += forced.final
                result.audio = forced.audio if result.audio is None else result.audio
                self.pending, result.unstable = [], []
                self._cut(self.committed_end - KEEP_BEFORE_S)
        return result

    def finish(self) -> Pass:
        """The end of the meeting: one last pass, then every pending word is final."""
        last = self.step() if self.new_samples else Pass()
        rest = self._commit(self.pending)
        self.pending = []
        if rest.final:
            last.final += rest.final
            last.audio = rest.audio if last.audio is None else last.audio
        last.unstable = []
        return last

    # ------------------------------------------------------------ internals

    def _hypothesis(self) -> list[CaptionWord]:
        words = self.words_of(self.window)
        offset = self.window_start
        shifted = [
            CaptionWord(start=round(w.start + offset, 3), end=round(w.end + offset, 3), word=w.word)
            for w in words
        ]
        # Words that end before the last final one were final already.
        return [w for w in shifted if w.end > self.committed_end + 0.05]

    def _commit(self, words: list[CaptionWord]) -> Pass:
        if not words:
            return Pass()
        self.committed_end = max(self.committed_end, words[-1].end)
        a = max(0, int((words[0].start - self.window_start) * SAMPLE_RATE))
        b = max(a, int((words[-1].end - self.window_start) * SAMPLE_RATE))
        return Pass(final=list(words), audio=self.window[a:b].copy())

    def _cut(self, at_s: float) -> None:
        """Drop the window's audio before `at_s` (recording time)."""
        drop = int((at_s - self.window_start) * SAMPLE_RATE)
        if drop <= 0:
            return
        drop = min(drop, len(self.window))
        self.window = self.window[drop:]
        self.window_start += drop / SAMPLE_RATE
