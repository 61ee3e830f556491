"""`decode`: any audio/video container -> 16 kHz mono 16-bit PCM WAV, with clear errors.

PyAV probes (it ships its own ffmpeg libraries); the ffmpeg executable converts, because
its resampler and container support are what every other tool is measured against.

An upload is hostile until shown otherwise: some demuxers open the files or URLs a file
names (HLS playlists, concat lists, image sequences), which would let one tenant have
another file of the host transcribed. Both the probe and the decoder therefore read
through the `file` protocol only and with a whitelist of demuxers that read one input and
open nothing else; the decoder is told the format the probe found, so the two agree,
whichever ffmpeg build is installed.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import wave
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from core.artifacts import ProbeInfo
from core.errors import StageFailed
from core.units import human_duration


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


# Demuxers that read the one input they are given and open no other file or URL (no
# playlists, concat lists, image sequences or external references). ffmpeg matches a
# demuxer whose name lists several ("mov,mp4,m4a,3gp,3g2,mj2") by any of them.
SAFE_DEMUXERS = (
    "wav", "w64", "rf64", "mp3", "aac", "flac", "ogg", "mov", "matroska", "aiff", "asf",
    "amr", "caf", "ac3", "eac3", "au", "wv", "ape", "tta", "flv", "mpeg", "mpegts", "avi",
    "dts", "mpc", "mpc8", "tak", "voc", "opus", "spdif", "truehd", "mlp",
)  # fmt: skip
# Options of the demuxer context, for PyAV's probe and the ffmpeg command line alike.
# `enable_drefs` (mov) stays at its default, off: a QuickTime file can name other files.
INPUT_GUARD = {"protocol_whitelist": "file", "format_whitelist": ",".join(SAFE_DEMUXERS)}


def _input_url(path: Path) -> str:
    """An explicit file: URL, so no part of a stored name is read as another protocol."""
    return "file:" + str(path.resolve())


def probe(path: Path) -> ProbeInfo:
    """Container and first audio stream facts; raises StageFailed when there is no audio."""
    import av

    if path.stat().st_size == 0:
        raise StageFailed("decode", "the file is empty (0 bytes)")
    try:
        container = av.open(_input_url(path), container_options=INPUT_GUARD)
    except av.FFmpegError as e:
        if e.errno in (errno.EINVAL, errno.EPERM):
            # A format off the whitelist (or one ffmpeg itself refuses to follow).
            reason = "not a supported audio or video format"
        else:
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
# Decoding more than this many times the announced duration (plus MAX_EXTRA_S) means the
# header lies about the length, e.g. to pass a duration limit.
MAX_DECODED_RATIO = 2.0
MAX_EXTRA_S = 10.0


class Decoded(NamedTuple):
    info: ProbeInfo
    num_samples: int


def decode_media(
    src: Path,
    dst: Path,
    *,
    ffmpeg_exe: str,
    max_duration_s: float | None = None,
    sample_rate: int = 16000,
    what: str = "the recording",
) -> Decoded:
    """Probe `src`, then convert its first audio stream to mono PCM WAV at `dst`.

    The decoder reads the format the probe found, under the same guard (INPUT_GUARD), and
    never more than `max_duration_s` of audio, whatever the header says. ffmpeg decodes
    what it can of a damaged file and still exits 0, so a result much shorter than the
    header announces (cut short) or longer (a header that lies) is an error.
    """
    import ffmpeg

    if not src.exists():
        raise StageFailed("decode", "the upload is missing", permanent=False)
    info = probe(src)
    announced = info.duration_s
    if max_duration_s is not None and announced is not None and announced > max_duration_s:
        raise StageFailed(
            "decode",
            f"{what} lasts {human_duration(announced)}; the limit is"
            f" {human_duration(max_duration_s)}",
        )
    assert info.format is not None  # PyAV names every format it opens
    # Write beside the target, then rename: a crash never leaves a WAV that looks whole.
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    output: dict[str, Any] = {
        "map": "0:a:0",  # the first audio stream only; video, subtitles, data are dropped
        "ac": 1,
        "ar": sample_rate,
        "acodec": "pcm_s16le",
        "f": "wav",
    }
    if max_duration_s is not None:
        output["t"] = f"{max_duration_s + 1:.3f}"  # one second more tells "too long" apart
    stream = (
        ffmpeg.input(_input_url(src), f=info.format.split(",")[0], **INPUT_GUARD)
        .output(str(tmp), **output)
        .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
    )
    try:
        stream.run(cmd=ffmpeg_exe, capture_stdout=True, capture_stderr=True, overwrite_output=True)
    except ffmpeg.Error as e:
        tmp.unlink(missing_ok=True)
        raise StageFailed("decode", _explain(e.stderr or b"", src)) from None
    try:
        samples = wav_num_samples(tmp)
        decoded_s = samples / sample_rate
        if samples == 0:
            raise StageFailed("decode", "the audio is empty (0 s)")
        if max_duration_s is not None and decoded_s > max_duration_s:
            raise StageFailed(
                "decode",
                f"{what} lasts more than the limit of {human_duration(max_duration_s)}"
                + (
                    f" (its header announces {human_duration(announced)})"
                    if announced is not None
                    else ""
                ),
            )
        if announced and decoded_s < MIN_DECODED_SHARE * announced:
            raise StageFailed(
                "decode",
                f"the file seems truncated: only {decoded_s:.1f} s of the "
                f"{announced:.1f} s its header announces could be decoded",
            )
        if announced and decoded_s > MAX_DECODED_RATIO * announced + MAX_EXTRA_S:
            raise StageFailed(
                "decode",
                f"the file's header announces {human_duration(announced)} but it holds"
                f" {human_duration(decoded_s)} of audio; re-export it and upload it again",
            )
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(dst)
    return Decoded(info, samples)


def _explain(stderr: bytes, src: Path) -> str:
    """Turn ffmpeg's stderr into one sentence a person can act on, without server paths
    (some builds start their message with the input's name)."""
    text = stderr.decode("utf-8", "replace")
    for name in (_input_url(src), str(src.resolve()), str(src)):
        text = text.replace(name + ": ", "").replace(name, "the file")
    lines = []
    for raw in text.splitlines():
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
    """16-bit PCM mono WAV (as written by `decode_media`) -> float32 in [-1, 1)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise StageFailed(
                "decode",
                f"{path.name} is not 16-bit mono PCM "
                f"({w.getnchannels()} channels, {8 * w.getsampwidth()} bit)",
            )
        raw = w.readframes(w.getnframes())
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
