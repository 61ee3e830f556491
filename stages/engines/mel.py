"""Whisper's log-Mel features a piece at a time, for recordings of any length.

faster-whisper computes the features of the whole recording in one go, and its STFT holds
every frame at once, as float32 window products and complex spectra: about 3.2 GB more per
hour of audio (535 MiB for 10 minutes, measured), which made the worker's peak memory grow
with the meeting's length (bench/README.md, "Long file"). The same arithmetic, frame by
frame, is done here `piece_frames` at a time; only the result, (80, frames) float32 (115 MB
an hour), is kept whole. Whisper's floor (the largest value - 8) needs the maximum of the
whole recording, so it is applied once at the end, as faster-whisper does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from faster_whisper.feature_extractor import FeatureExtractor

PIECE_FRAMES = 12_000  # 120 s at Whisper's 10 ms hop


class PiecewiseFeatureExtractor(FeatureExtractor):  # type: ignore[misc]
    piece_frames: int = PIECE_FRAMES

    @classmethod
    def like(cls, other: FeatureExtractor, piece_frames: int = PIECE_FRAMES) -> Any:
        """This extractor with `other`'s settings (the model's own mel filters, hop, FFT)."""
        new = cls.__new__(cls)
        new.__dict__.update(other.__dict__)
        new.piece_frames = piece_frames
        return new

    def __call__(
        self, waveform: np.ndarray, padding: int = 160, chunk_length: int | None = None
    ) -> np.ndarray:
        if chunk_length is not None:  # as faster-whisper's: it sets the window length
            self.n_samples = chunk_length * self.sampling_rate
            self.nb_max_frames = self.n_samples // self.hop_length
        wave = np.asarray(waveform, dtype=np.float32)
        # faster-whisper pads `padding` zeros, then reflects n_fft / 2 samples at both ends
        # (the STFT's centring), then drops the STFT's last frame. Each piece builds its own
        # part of that padded signal; no copy of the whole recording is made.
        half, hop = self.n_fft // 2, self.hop_length
        length = len(wave) + padding
        # numpy reflects a signal shorter than the pad more than once: do as it does.
        whole = None
        if length <= half:
            whole = np.pad(np.pad(wave, (0, padding)), (half, half), mode="reflect")

        def segment(lo: int, hi: int) -> np.ndarray:
            if whole is not None:
                return whole[lo:hi]
            return _reflected(wave, length, lo - half, hi - half)

        frames = (length + 2 * half - self.n_fft) // hop
        window = np.hanning(self.n_fft + 1)[:-1].astype("float32")
        out = np.empty((self.mel_filters.shape[0], frames), dtype=np.float32)
        for start in range(0, frames, self.piece_frames):
            stop = min(start + self.piece_frames, frames)
            spectrum = self.stft(
                segment(start * hop, (stop - 1) * hop + self.n_fft),
                self.n_fft,
                hop,
                window=window,
                center=False,
                return_complex=True,
            ).astype("complex64")
            mel = self.mel_filters @ (np.abs(spectrum) ** 2)
            out[:, start:stop] = np.log10(np.clip(mel, a_min=1e-10, a_max=None))
        if frames:
            np.maximum(out, out.max() - 8.0, out=out)
        out += 4.0
        out /= 4.0
        return out


def _zero_padded(wave: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Samples lo..hi of `wave` followed by zeros (0 <= lo <= hi)."""
    out = np.zeros(hi - lo, dtype=np.float32)
    got = wave[lo:hi]
    out[: len(got)] = got
    return out


def _reflected(wave: np.ndarray, length: int, lo: int, hi: int) -> np.ndarray:
    """Samples lo..hi of `wave` zero-padded to `length`, reflected beyond both ends as
    numpy's `reflect` pads (the edge sample not repeated); lo may be < 0, hi > length."""
    parts = []
    if lo < 0:
        parts.append(_zero_padded(wave, 1, 1 - lo)[::-1])
    parts.append(_zero_padded(wave, max(lo, 0), min(hi, length)))
    if hi > length:
        parts.append(_zero_padded(wave, 2 * length - 1 - hi, length - 1)[::-1])
    return np.concatenate(parts) if len(parts) > 1 else parts[0]
