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
        if padding:
            wave = np.pad(wave, (0, padding))
        half = self.n_fft // 2
        padded = np.pad(wave, (half, half), mode="reflect")  # the STFT's centring
        # faster-whisper drops the STFT's last frame.
        frames = 1 + (len(padded) - self.n_fft) // self.hop_length - 1
        window = np.hanning(self.n_fft + 1)[:-1].astype("float32")
        out = np.empty((self.mel_filters.shape[0], frames), dtype=np.float32)
        for start in range(0, frames, self.piece_frames):
            stop = min(start + self.piece_frames, frames)
            lo = start * self.hop_length
            hi = (stop - 1) * self.hop_length + self.n_fft
            spectrum = self.stft(
                padded[lo:hi],
                self.n_fft,
                self.hop_length,
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
