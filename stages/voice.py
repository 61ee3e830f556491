"""Which audio a voice embedding may be made from: detected speech only (enrollment), and
for a diarized speaker, their clean speech only (alone, away from turn edges).

Speaker-verification practice (docs/models.md, "Identification"): an embedding of overlap,
of the first and last moments of a turn (where the diarization boundary is least sure)
or of silence, music and tones is not the person's voice, and comparing it with a
voiceprint gives scores that mean little.
"""

from __future__ import annotations

import numpy as np

from core.artifacts import Diarization, DiarizedSpeaker, Turn
from core.errors import BadInput
from stages.engines.base import SAMPLE_RATE, SpeakerEncoder, l2_normalise

# Trimmed from each end of a turn before its audio counts as clean.
EDGE_S = 0.25
# Clean pieces shorter than this (after trimming) are left out: too little to embed.
MIN_PIECE_S = 0.5
# A speaker's embedding is made from at most this much clean speech (the longest pieces):
# more changes the embedding little and costs time on long meetings (30 s: 10 CPU s for
# the ten speakers of a 12 min meeting; bench/README.md, "Identification on meeting audio").
MAX_CLEAN_S = 30.0
# Enrollment: a clip with less detected speech than this is refused.
MIN_ENROLL_SPEECH_S = 3.0
# Enrollment: a clip whose embedding scores below this (cosine) against the mean of the
# enrollment's other clips is not the same person. On the identification dev protocol one
# person across recordings scores 0.76 or more, two people 0.34 at most (0.45 for a voice
# with 4 s of clean speech); bench/README.md, "Identification on meeting audio".
MIN_CLIP_AGREEMENT = 0.5


def speech_regions(audio: np.ndarray) -> list[tuple[int, int]]:
    """Silero VAD (the model faster-whisper ships) -> [(start, end)] in samples. Silero and
    not segmentation-3.0: the latter hears speech in music (bench/README.md)."""
    from stages.engines.windowed import WindowedOptions, silero_regions

    return silero_regions(np.ascontiguousarray(audio, dtype=np.float32), WindowedOptions())


def enrollment_speech(clips: list[np.ndarray]) -> list[np.ndarray]:
    """Each clip's detected speech, joined; BadInput naming the clip and the speech found
    when a clip holds less than MIN_ENROLL_SPEECH_S."""
    out: list[np.ndarray] = []
    for n, clip in enumerate(clips, start=1):
        regions = speech_regions(clip)
        found = sum(e - s for s, e in regions) / SAMPLE_RATE
        if found < MIN_ENROLL_SPEECH_S:
            raise BadInput(
                f"clip {n} holds {found:.1f} s of speech ({len(clip) / SAMPLE_RATE:.1f} s long);"
                f" at least {MIN_ENROLL_SPEECH_S:g} s of one person speaking is needed"
                " (silence, music and tones are not speech)"
            )
        out.append(np.concatenate([clip[s:e] for s, e in regions]))
    return out


def disagreeing_clips(embeddings: list[np.ndarray]) -> list[tuple[int, float]]:
    """(clip number, score) of each clip whose embedding scores below MIN_CLIP_AGREEMENT
    against the mean of the others: it does not sound like the same person."""
    if len(embeddings) < 2:
        return []
    unit = [l2_normalise(e) for e in embeddings]
    out = []
    for i, e in enumerate(unit):
        rest = l2_normalise(np.mean([u for j, u in enumerate(unit) if j != i], axis=0))
        score = float(np.dot(e, rest))
        if score < MIN_CLIP_AGREEMENT:
            out.append((i + 1, score))
    return out


def clean_spans(
    turns: list[Turn], label: str, edge_s: float = EDGE_S, min_piece_s: float = MIN_PIECE_S
) -> list[tuple[float, float]]:
    """Where `label` speaks alone, each turn trimmed by `edge_s` at both ends, in seconds;
    pieces shorter than `min_piece_s` are dropped."""
    own = sorted((t.start, t.end) for t in turns if t.speaker == label)
    others = sorted((t.start, t.end) for t in turns if t.speaker != label)
    pieces: list[tuple[float, float]] = []
    for start, end in own:
        spans = [(start + edge_s, end - edge_s)]
        for o_start, o_end in others:  # cut out everyone else's speech (overlap)
            if o_end <= start or o_start >= end:
                continue
            cut: list[tuple[float, float]] = []
            for s, e in spans:
                if o_end <= s or o_start >= e:
                    cut.append((s, e))
                    continue
                if o_start > s:
                    cut.append((s, o_start - edge_s))
                if o_end < e:
                    cut.append((o_end + edge_s, e))
            spans = cut
        pieces += [(s, e) for s, e in spans if e - s >= min_piece_s]
    # Overlapping own turns (a label never overlaps itself in practice): merged.
    merged: list[tuple[float, float]] = []
    for s, e in sorted(pieces):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def clean_embedding(
    audio: np.ndarray, spans: list[tuple[float, float]], encoder: SpeakerEncoder
) -> tuple[np.ndarray | None, float]:
    """The embedding of the longest clean pieces (up to MAX_CLEAN_S, joined) and the clean
    seconds there are in all; (None, seconds) when there are none."""
    total = sum(e - s for s, e in spans)
    if not spans:
        return None, 0.0
    chosen, got = [], 0.0
    for s, e in sorted(spans, key=lambda p: p[0] - p[1]):  # longest first
        if got >= MAX_CLEAN_S:
            break
        e = min(e, s + MAX_CLEAN_S - got)
        chosen.append((s, e))
        got += e - s
    pieces = [audio[int(s * SAMPLE_RATE) : int(e * SAMPLE_RATE)] for s, e in sorted(chosen)]
    return l2_normalise(encoder.embed(np.concatenate(pieces))), round(total, 3)


def with_clean_embeddings(
    audio: np.ndarray, diarization: Diarization, encoder: SpeakerEncoder
) -> Diarization:
    """Each speaker's embedding made again from their clean speech, with `clean_speech_s`
    set. A speaker with no clean speech keeps the diarizer's centroid (and clean 0 s,
    which identify never names). The encoder must be the diarizer's embedding model."""
    if encoder.model_id != diarization.embedding_model:
        return diarization  # another space: the centroids stay, clean time unknown
    speakers: list[DiarizedSpeaker] = []
    for sp in diarization.speakers:
        emb, clean_s = clean_embedding(audio, clean_spans(diarization.turns, sp.label), encoder)
        speakers.append(
            sp.model_copy(
                update={
                    "embedding": [float(x) for x in emb] if emb is not None else sp.embedding,
                    "clean_speech_s": clean_s,
                }
            )
        )
    return diarization.model_copy(update={"speakers": speakers})


def enroll_voiceprint(clips: list[np.ndarray], encoder: SpeakerEncoder) -> list[float]:
    """A voiceprint from enrollment clips: each clip's detected speech only (BadInput when a
    clip holds too little), all clips one person (BadInput naming those that are not),
    then the average of their L2-normalised embeddings, normalised again."""
    if not clips:
        raise BadInput("enrollment needs at least one audio clip")
    speech = enrollment_speech(clips)
    embeddings = [l2_normalise(encoder.embed(s)) for s in speech]
    odd = disagreeing_clips(embeddings)
    if odd:
        which = ", ".join(f"clip {n} (score {score:.2f})" for n, score in odd)
        raise BadInput(
            f"the clips do not sound like one person: {which} differ from the others"
            f" (at least {MIN_CLIP_AGREEMENT:g} is expected); enroll each person separately"
        )
    return [float(x) for x in l2_normalise(np.mean(embeddings, axis=0))]
