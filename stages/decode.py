"""`decode`: any audio/video container -> 16 kHz mono 16-bit PCM WAV, with clear errors.

PyAV probes (it ships its own ffmpeg libraries); the ffmpeg executable converts, because
its resampler and container support are what every other tool is measured against.
"""

from __future__ import annotations

import os
import re
import shutil
import wave
from pathlib import Path
from typing import Any

import numpy as np

from core.artifacts import ProbeInfo
from core.errors import StageFailed


def find_ffmpeg() -> str:
    """The system ffmpeg when installed, else the static binary imageio-ffmpeg ships."""
    system = shutil.which("ffmpeg")
    if system:
        return system
    try:
        import imageio_ffmpeg
    except ImportError:
        raise StageFailed(
            "decode",
            "no ffmpeg found: install ffmpeg or the imageio-ffmpeg package",
            permanent=False,
        ) from None
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def probe(path: Path) -> ProbeInfo:
    """Container and first audio stream facts; raises StageFailed when there is no audio."""
    import av

    if path.stat().st_size == 0:
        raise StageFailed("decode", "the file is empty (0 bytes)")
    try:
        container = av.open(str(path))
    except av.FFmpegError as e:
        reason = e.strerror or "unknown format"
        raise StageFailed(
            "decode", f"the file is not a readable audio or video file ({reason})"
        ) from None
    except (UnicodeDecodeError, ValueError) as e:
        raise StageFailed(
            "decode", f"the file is not a readable audio or video file ({e})"
        ) from None
    with container:
        audio = container.streams.audio
        if not audio:
            raise StageFailed("decode", "the file contains no audio track")
        stream = audio[0]
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000  # av.time_base: microseconds
        ctx: Any = stream.codec_context
        return ProbeInfo(
            format=container.format.name,
            codec=ctx.name,
            channels=ctx.channels,
            sample_rate=ctx.sample_rate,
            duration_s=duration,
            bit_rate=container.bit_rate or None,
        )


# Decoding less than this share of the duration the header announces means the file was cut
# short (an interrupted upload). Loose on purpose: VBR MP3 headers without an index only
# estimate their duration.
MIN_DECODED_SHARE = 0.5


def decode_to_wav(
    src: Path,
    dst: Path,
    *,
    sample_rate: int = 16000,
    ffmpeg_exe: str,
    expected_duration_s: float | None = None,
) -> int:
    """Convert the first audio stream of `src` to mono PCM WAV at `dst`; return its samples.

    ffmpeg decodes what it can of a damaged file and still exits 0, so pass the probed
    `expected_duration_s` to turn a badly truncated file into an error.
    """
    import ffmpeg

    if not src.exists():
        raise StageFailed("decode", f"the upload is missing ({src.name})", permanent=False)
    if src.stat().st_size == 0:
        raise StageFailed("decode", "the file is empty (0 bytes)")
    # Write beside the target, then rename: a crash never leaves a WAV that looks whole.
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    stream = (
        ffmpeg.input(str(src))
        .output(
            str(tmp),
            map="0:a:0",  # the first audio stream only; video, subtitles, data are dropped
            ac=1,
            ar=sample_rate,
            acodec="pcm_s16le",
            f="wav",
        )
        .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
    )
    try:
        stream.run(cmd=ffmpeg_exe, capture_stdout=True, capture_stderr=True, overwrite_output=True)
    except ffmpeg.Error as e:
        tmp.unlink(missing_ok=True)
        raise StageFailed("decode", _explain(e.stderr or b"")) from None
    samples = wav_num_samples(tmp)
    if samples == 0:
        tmp.unlink(missing_ok=True)
        raise StageFailed("decode", "the audio is empty (0 s)")
    decoded_s = samples / sample_rate
    if expected_duration_s and decoded_s < MIN_DECODED_SHARE * expected_duration_s:
        tmp.unlink(missing_ok=True)
        raise StageFailed(
            "decode",
            f"the file seems truncated: only {decoded_s:.1f} s of the "
            f"{expected_duration_s:.1f} s its header announces could be decoded",
        )
    tmp.replace(dst)
    return samples


def _explain(stderr: bytes) -> str:
    """Turn ffmpeg's stderr into one sentence a person can act on."""
    lines = []
    for raw in stderr.decode("utf-8", "replace").splitlines():
        # "[in#0 @ 0x55...] Error opening input: Invalid data ..." -> "Invalid data ..."
        line = re.sub(r"^(\[[^\]]*\]\s*)+", "", raw.strip())
        line = re.sub(r"^Error opening input( files?)?[^:]*:\s*", "", line)
        if line:
            lines.append(line)
    text = "\n".join(lines)
    if "matches no streams" in text or "does not contain any stream" in text:
        return "the file contains no audio track"
    # Skip ffmpeg's generic closing lines; the one before them says why.
    generic = ("error opening input", "conversion failed", "error opening output")
    meaningful = [ln for ln in lines if not ln.lower().startswith(generic)]
    detail = (meaningful or lines or ["no error output"])[-1]
    return f"ffmpeg could not read the file: {detail}"


def wav_num_samples(path: Path) -> int:
    with wave.open(str(path), "rb") as w:
        return w.getnframes()


def load_wav(path: Path) -> np.ndarray:
    """16-bit PCM mono WAV (as written by `decode_to_wav`) -> float32 in [-1, 1)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise StageFailed(
                "decode",
                f"{path.name} is not 16-bit mono PCM "
                f"({w.getnchannels()} channels, {8 * w.getsampwidth()} bit)",
            )
        raw = w.readframes(w.getnframes())
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
