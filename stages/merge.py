"""`merge`: words (transcribe) + turns (diarize) + names (identify) -> the meeting result."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from itertools import groupby

from core.artifacts import (
    Diarization,
    Identification,
    MeetingResult,
    ProvenanceEntry,
    ResultSegment,
    ResultSpeaker,
    ResultWord,
    Transcript,
    Turn,
    Word,
)

DEFAULT_SPEAKER = "S1"  # used when diarization found no turns at all


class TurnIndex:
    """Answers "which speaker covers [start, end] most" in O(log n + k) per query.

    Turns are sorted by start; a turn can only overlap a query if it starts before the
    query ends and after `query start - longest turn`, which bounds the scan.
    """

    def __init__(self, turns: Sequence[Turn]) -> None:
        self.turns = sorted(turns, key=lambda t: (t.start, t.end))
        self.starts = [t.start for t in self.turns]
        self.max_len = max((t.end - t.start for t in self.turns), default=0.0)
        # prefix_best_end[i]: index of the turn with the latest end among turns[:i + 1]
        self.prefix_best_end: list[int] = []
        best = -1
        for i, t in enumerate(self.turns):
            if best < 0 or t.end > self.turns[best].end:
                best = i
            self.prefix_best_end.append(best)

    def speaker_for(self, start: float, end: float) -> str | None:
        if not self.turns:
            return None
        hi = bisect.bisect_left(self.starts, end)  # turns[:hi] start before the query ends
        lo = bisect.bisect_left(self.starts, start - self.max_len)
        overlap: dict[str, float] = {}
        for t in self.turns[lo:hi]:
            o = min(t.end, end) - max(t.start, start)
            if o > 0:
                overlap[t.speaker] = overlap.get(t.speaker, 0.0) + o
        if overlap:
            return max(overlap, key=lambda s: overlap[s])  # ties: earliest turn's speaker
        return self._nearest(start, end, hi)

    def _nearest(self, start: float, end: float, hi: int) -> str:
        """No overlap: the turn closest in time (ending before, or starting after, the word)."""
        candidates: list[tuple[float, str]] = []
        j = bisect.bisect_right(self.starts, start)  # turns[:j] start at or before the word
        if j > 0:
            before = self.turns[self.prefix_best_end[j - 1]]
            candidates.append((max(start - before.end, 0.0), before.speaker))
        if hi < len(self.turns):
            after = self.turns[hi]
            candidates.append((max(after.start - end, 0.0), after.speaker))
        if j < hi:  # zero-length word or turn inside the scan window: distance 0
            candidates.append((0.0, self.turns[j].speaker))
        return min(candidates, key=lambda c: c[0])[1]


def _assign(words: Sequence[Word], index: TurnIndex) -> list[ResultWord]:
    return [
        ResultWord(
            start=w.start,
            end=w.end,
            word=w.word,
            probability=w.probability,
            speaker=index.speaker_for(w.start, w.end) or DEFAULT_SPEAKER,
        )
        for w in words
    ]


# Sentence-level smoothing (off by default): a run of words of one speaker inside a
# sentence mostly spoken by another, lasting less than `smooth_max_run_s`, takes the
# sentence's speaker. Measured with bench/eval.py it did worse than max overlap + nearest
# turn (word-speaker accuracy 98.3 % vs 99.0 % pooled, 95.5 % vs 100 % on pyannote's
# sample.wav, where quick "Hello?" exchanges share one Whisper sentence), so it stays an
# option for audio with sloppier turn edges, not the default.
SMOOTH_MAX_RUN_S = 0.0
SMOOTH_TRY_S = 1.0  # the value bench/eval.py compares against the default
SMOOTH_MAX_GAP_S = 0.5
_SENTENCE_END = (".", "?", "!", "…", "。", "？", "！")


def _sentences(words: list[ResultWord]) -> list[list[ResultWord]]:
    out: list[list[ResultWord]] = [[]]
    for w in words:
        out[-1].append(w)
        if w.word.strip().endswith(_SENTENCE_END):
            out.append([])
    return [s for s in out if s]


def smooth_sentences(
    words: list[ResultWord], max_run_s: float = SMOOTH_MAX_RUN_S
) -> list[ResultWord]:
    """Short runs of a minority speaker inside a sentence take the sentence's speaker."""
    if max_run_s <= 0:
        return words
    out: list[ResultWord] = []
    for sentence in _sentences(words):
        talk: dict[str, float] = {}
        for w in sentence:
            talk[w.speaker] = talk.get(w.speaker, 0.0) + max(w.end - w.start, 0.0)
        if len(talk) < 2:
            out.extend(sentence)
            continue
        main = max(talk, key=lambda k: talk[k])
        runs = [list(g) for _, g in groupby(sentence, key=lambda w: w.speaker)]
        for i, run in enumerate(runs):
            speaker = run[0].speaker
            short = run[-1].end - run[0].start < max_run_s
            # Only runs that touch the main speaker's words: after a long pause the speaker
            # may really have changed mid-sentence (or Whisper missed a full stop).
            before = runs[i - 1] if i > 0 else None
            after = runs[i + 1] if i + 1 < len(runs) else None
            touches = (
                before is not None
                and before[0].speaker == main
                and run[0].start - before[-1].end <= SMOOTH_MAX_GAP_S
            ) or (
                after is not None
                and after[0].speaker == main
                and after[0].start - run[-1].end <= SMOOTH_MAX_GAP_S
            )
            if speaker != main and short and touches and talk[speaker] < talk[main]:
                run = [w.model_copy(update={"speaker": main}) for w in run]
            out.extend(run)
    return out


def _split_by_speaker(words: list[ResultWord]) -> list[ResultSegment]:
    segments = []
    for speaker, group in groupby(words, key=lambda w: w.speaker):
        run = list(group)
        text = "".join(w.word for w in run).strip()
        if text:  # whisper sometimes emits a lone space or punctuation-free blank
            segments.append(
                ResultSegment(
                    start=run[0].start, end=run[-1].end, speaker=speaker, text=text, words=run
                )
            )
    return segments


def run(
    job_id: str,
    duration_s: float,
    transcript: Transcript,
    diarization: Diarization,
    identification: Identification | None,
    provenance: dict[str, ProvenanceEntry],
    *,
    smooth_max_run_s: float = SMOOTH_MAX_RUN_S,
) -> MeetingResult:
    # Exclusive turns give one speaker per instant, which is what a word needs.
    index = TurnIndex(diarization.exclusive_turns or diarization.turns)

    segments: list[ResultSegment] = []
    for seg in transcript.segments:  # whisper's boundaries stay boundaries
        if seg.words:
            words = smooth_sentences(_assign(seg.words, index), smooth_max_run_s)
            segments.extend(_split_by_speaker(words))
        elif seg.text.strip():  # a segment without word timings: place it as one block
            speaker = index.speaker_for(seg.start, seg.end) or DEFAULT_SPEAKER
            segments.append(
                ResultSegment(
                    start=seg.start, end=seg.end, speaker=speaker, text=seg.text.strip(), words=[]
                )
            )

    return MeetingResult(
        job_id=job_id,
        duration_s=duration_s,
        language=transcript.language,
        speakers=_speakers(diarization, identification, segments),
        segments=segments,
        provenance=provenance,
    )


def _speakers(
    diarization: Diarization, identification: Identification | None, segments: list[ResultSegment]
) -> list[ResultSpeaker]:
    """Every diarized speaker (silent ones keep their talk time), then any label only words use."""
    matches = {m.label: m for m in identification.matches} if identification else {}
    talk = {s.label: s.talk_time_s for s in diarization.speakers}
    extra: dict[str, float] = {}
    for seg in segments:  # e.g. "S1" when diarization found nobody: time from the words
        if seg.speaker not in talk:
            extra[seg.speaker] = extra.get(seg.speaker, 0.0) + (seg.end - seg.start)
    talk.update(extra)
    result = []
    for label, seconds in talk.items():
        m = matches.get(label)
        named = m if m is not None and m.speaker_id is not None else None
        result.append(
            ResultSpeaker(
                id=label,
                name=named.name if named else None,
                speaker_id=named.speaker_id if named else None,
                # the cosine (0-1) where identify recorded one: s-norm scores are not shares
                confidence=(named.cosine if named.cosine is not None else named.score)
                if named
                else None,
                talk_time_s=round(seconds, 3),
                suggestion=m.suggestion if m is not None and named is None else None,
            )
        )
    return result
