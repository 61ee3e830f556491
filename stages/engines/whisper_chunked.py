"""The chunked Whisper decoder: the speech the VAD found, cut into chunks of at most one
window, decoded `batch_size` chunks at a time, in one language for the whole recording.

Each chunk is decoded as the sequential decoder decodes a window (same VAD settings, same
prompt, beam, timestamp rules, no-speech rule and word timing), except that it is not
conditioned on the text of the chunk before it: that is what lets chunks be decoded at
once. When Whisper stops before a chunk's end (as it does when it expects the next window
to go on; on the 4-speaker meeting, 5 chunks of 9 left their last utterance), what it left
is decoded again, as the sequential decoder's next window would hear it, except that the
rests of a round are packed into chunks together (one encoding for several), not
conditioned on the text before them. A recording whose speech fits one window and is
heard in one pass is decoded exactly as the sequential decoder decodes it, without its
second encoder pass (it encodes the first window once for the language, once to decode).
docs/models.md ("Chunked decoding") has the measurements.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.artifacts import Transcript, TranscriptSegment, Word
from core.events import ProgressCallback
from stages.engines.base import SAMPLE_RATE
from stages.engines.speech_chunks import Chunk, Span, build_chunks, resume_frame, vote_language

WINDOW_S = 30  # Whisper's window: the longest chunk
# The sequential decoder's rules (faster-whisper's defaults, which it runs with): a window
# whose no-speech probability is above NO_SPEECH_THRESHOLD and average log-probability
# below LOGPROB_THRESHOLD is silence; the first timestamp at most 1 s into the window.
NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0
MAX_INITIAL_TIMESTAMP_S = 1.0
# Rounds of decoding what earlier rounds left unheard (each round's audio is shorter).
MAX_ROUNDS = 4
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


def speech_spans(audio: np.ndarray) -> list[Span]:
    """Where the VAD hears speech: the sequential decoder's Silero settings, with pieces
    short enough to fit a window (a longer one is split at its last pause), so a chunk
    never has to cut one."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    found = get_speech_timestamps(audio, VadOptions(max_speech_duration_s=WINDOW_S))
    return [(int(s["start"]), int(s["end"])) for s in found]


def transcribe_chunked(
    model: Any,
    audio: np.ndarray,
    *,
    language: str | None,
    beam_size: int,
    batch_size: int,
    progress: ProgressCallback,
) -> Transcript:
    """`model`: a loaded faster_whisper.WhisperModel."""
    duration = len(audio) / SAMPLE_RATE
    chunks = build_chunks(speech_spans(audio), WINDOW_S * SAMPLE_RATE)
    if not chunks:  # nothing the VAD calls speech
        return Transcript(
            language=language or "und",
            language_probability=1.0 if language else 0.0,
            duration_s=duration,
            segments=[],
        )
    decoder = _ChunkDecoder(model, beam_size)
    probability = 1.0
    segments: list[TranscriptSegment] = []
    heard = 0  # samples of the recording decoded once
    for _ in range(MAX_ROUNDS):
        rests: list[Chunk] = []
        for first in range(0, len(chunks), batch_size):
            batch = chunks[first : first + batch_size]
            encoded, frames = decoder.encode(audio, batch)
            if language is None:  # once, from the first batch's speech
                language, probability = decoder.language(encoded, batch)
            found, left = decoder.decode(encoded, frames, batch, language)
            segments.extend(found)
            rests.extend(left)
            heard = max([heard] + [c.end for c in batch])
            progress("transcribe", min(heard / SAMPLE_RATE / duration, 1.0), 1.0)
        if not rests:
            break
        # What Whisper left unheard at the ends of chunks, packed into chunks in turn: a
        # window's encoding costs the same for 3 s of speech as for 30.
        chunks = build_chunks([span for c in rests for span in c.spans], WINDOW_S * SAMPLE_RATE)
    assert language is not None
    segments.sort(key=lambda s: (s.start, s.end))
    return Transcript(
        language=language,
        language_probability=probability,
        duration_s=duration,
        segments=segments,
    )


class _ChunkDecoder:
    """One batch of chunks through Whisper: encode, find the language, decode, time the
    words, map them back to the recording."""

    def __init__(self, model: Any, beam_size: int) -> None:
        self.model = model
        self.beam_size = beam_size

    def encode(self, audio: np.ndarray, batch: list[Chunk]) -> tuple[Any, list[int]]:
        from faster_whisper.audio import pad_or_trim

        feats, frames = [], []
        for chunk in batch:
            # As the sequential decoder's features: the STFT's last frame dropped.
            f = self.model.feature_extractor(chunk.audio(audio))[..., :-1]
            frames.append(min(f.shape[-1], self.model.feature_extractor.nb_max_frames))
            feats.append(pad_or_trim(f))
        return self.model.encode(np.stack(feats)), frames

    def language(self, encoded: Any, batch: list[Chunk]) -> tuple[str, float]:
        detected = self.model.model.detect_language(encoded)
        return vote_language(
            [
                ([(token[2:-2], p) for token, p in probs], chunk.samples / SAMPLE_RATE)
                for probs, chunk in zip(detected, batch, strict=True)
            ]
        )

    def decode(
        self, encoded: Any, frames: list[int], batch: list[Chunk], language: str
    ) -> tuple[list[TranscriptSegment], list[Chunk]]:
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        model = self.model
        tokenizer = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language
        )
        results = model.model.generate(
            encoded,
            [model.get_prompt(tokenizer, [])] * len(batch),
            beam_size=self.beam_size,
            patience=1,
            length_penalty=1,
            max_length=model.max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
            max_initial_timestamp_index=round(MAX_INITIAL_TIMESTAMP_S / model.time_precision),
        )
        # The batch's encoder output on the host, one row per chunk (a GPU's is copied).
        host = encoded if encoded.device == "cpu" else encoded.to_device(ctranslate2.Device.cpu)
        states = np.asarray(host)
        fps = model.frames_per_second
        out: list[TranscriptSegment] = []
        rests: list[Chunk] = []
        for i, (result, chunk) in enumerate(zip(results, batch, strict=True)):
            tokens = result.sequences_ids[0]
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
            if result.no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob < LOGPROB_THRESHOLD:
                continue  # silence, as the sequential decoder judges a window
            pieces, seek, single_ending = model._split_segments_by_timestamps(
                tokenizer=tokenizer,
                tokens=tokens,
                time_offset=0.0,
                segment_size=frames[i],
                segment_duration=frames[i] / fps,
                seek=0,
            )
            # Word timings from this chunk's cross-attention alone, as for the first
            # window of the sequential decoder (no earlier speech to compare with).
            model.add_word_timestamps(
                [pieces],
                tokenizer,
                ctranslate2.StorageView.from_array(np.ascontiguousarray(states[i : i + 1])),
                frames[i],
                PREPEND_PUNCTUATIONS,
                APPEND_PUNCTUATIONS,
                last_speech_timestamp=0.0,
            )
            for piece in pieces:
                seg = _segment(piece, tokenizer, chunk, avg_logprob, result.no_speech_prob)
                if seg is not None:
                    out.append(seg)
            ends = [w["end"] for p in pieces for w in p.get("words", [])]
            resume = resume_frame(seek, frames[i], single_ending, ends[-1] if ends else None, fps)
            rest = chunk.tail(resume / fps, SAMPLE_RATE) if resume is not None else None
            if rest is not None:
                rests.append(rest)
        return out, rests


def _segment(
    piece: dict[str, Any], tokenizer: Any, chunk: Chunk, avg_logprob: float, no_speech: float
) -> TranscriptSegment | None:
    text = tokenizer.decode(piece["tokens"]).strip()
    if piece["start"] == piece["end"] or not text:  # as the sequential decoder skips them
        return None
    words = []
    for w in piece.get("words", []):
        # Both ends through the span of the word's middle: never across a cut-out pause.
        span = chunk.span_at((w["start"] + w["end"]) / 2, SAMPLE_RATE)
        words.append(
            Word(
                start=chunk.to_recording(w["start"], SAMPLE_RATE, span),
                end=chunk.to_recording(w["end"], SAMPLE_RATE, span),
                word=w["word"],
                probability=float(w["probability"]),
            )
        )
    if words:
        start, end = words[0].start, words[-1].end
    else:
        start = chunk.to_recording(piece["start"], SAMPLE_RATE)
        end = chunk.to_recording(piece["end"], SAMPLE_RATE)
    return TranscriptSegment(
        start=start,
        end=end,
        text=text,
        words=words,
        avg_logprob=float(avg_logprob),
        no_speech_prob=float(no_speech),
    )
