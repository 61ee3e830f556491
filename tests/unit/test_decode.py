"""decode with the real ffmpeg on the repository's test audio (tests/data/audio)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from core.errors import StageFailed
from stages import decode

AUDIO = Path(__file__).resolve().parents[2] / "tests" / "data" / "audio"


@pytest.fixture(scope="module")
def ffmpeg_exe() -> str:
    return decode.find_ffmpeg()


@pytest.mark.parametrize(
    ("name", "duration", "channels", "rate"),
    [
        ("jfk/jfk.m4a", 11.0, 2, 44100),
        ("jfk/jfk.webm", 11.0, 2, 48000),
        ("misc/french.aiff", 2.53, 1, 44100),
        ("misc/stereo_diarization.wav", 5.0, 2, 16000),
    ],
)
def test_decodes_to_16k_mono(
    name: str, duration: float, channels: int, rate: int, tmp_path: Path, ffmpeg_exe: str
) -> None:
    src = AUDIO / name
    info = decode.probe(src)
    assert (info.channels, info.sample_rate) == (channels, rate)
    assert info.duration_s == pytest.approx(duration, abs=0.05)

    dst = tmp_path / "out.wav"
    decoded_info, samples = decode.decode_media(src, dst, ffmpeg_exe=ffmpeg_exe)
    assert decoded_info == info
    assert samples / 16000 == pytest.approx(duration, abs=0.05)
    audio = decode.load_wav(dst)
    assert audio.dtype == np.float32 and audio.ndim == 1 and len(audio) == samples
    assert 0.01 < float(np.abs(audio).max()) <= 1.0
    assert not list(tmp_path.glob(".*.tmp"))  # the temp file was renamed, not left behind


def test_text_file_named_wav_is_rejected(tmp_path: Path, ffmpeg_exe: str) -> None:
    src = tmp_path / "notes.wav"
    src.write_text("these are meeting notes, not audio\n" * 20)
    with pytest.raises(StageFailed, match="not a readable audio or video file") as probe_err:
        decode.probe(src)
    assert probe_err.value.stage == "decode" and probe_err.value.permanent
    # decode refuses it at its probe, whichever ffmpeg is installed
    with pytest.raises(StageFailed, match="not a readable audio or video file") as err:
        decode.decode_media(src, tmp_path / "out.wav", ffmpeg_exe=ffmpeg_exe)
    assert str(tmp_path) not in err.value.message  # no server path for the client
    assert not (tmp_path / "out.wav").exists()


def test_ffmpeg_messages_name_no_path_and_no_address(tmp_path: Path) -> None:
    src = tmp_path / "notes.wav"
    # Debian's ffmpeg 5.1 starts its message with the input's name; newer builds do not.
    stderr = (
        f"[in#0 @ 0x55d0c0] Error opening input: Invalid data found\n"
        f"file:{src.resolve()}: Invalid data found when processing input\n"
    ).encode()
    message = decode._explain(stderr, src)
    assert message == "ffmpeg could not read the file: Invalid data found when processing input"


def lavfi(ffmpeg_exe: str, source: str, dst: Path, *options: str) -> Path:
    """`dst` made by ffmpeg from one of its lavfi test sources."""
    cmd = [ffmpeg_exe, "-v", "error", "-f", "lavfi", "-i", source, *options, str(dst)]
    subprocess.run(cmd, check=True)
    return dst


def empty_file(tmp_path: Path, ffmpeg_exe: str) -> Path:
    src = tmp_path / "empty.m4a"
    src.write_bytes(b"")
    return src


def video_without_audio(tmp_path: Path, ffmpeg_exe: str) -> Path:
    return lavfi(ffmpeg_exe, "testsrc=d=1:s=64x64", tmp_path / "silent.mp4", "-c:v", "mpeg4")


@pytest.mark.parametrize(
    ("make", "message"),
    [(empty_file, "empty"), (video_without_audio, "no audio track")],
    ids=["empty file", "no audio track"],
)
def test_unusable_file_is_rejected_by_probe_and_decode(
    make: Callable[[Path, str], Path], message: str, tmp_path: Path, ffmpeg_exe: str
) -> None:
    src = make(tmp_path, ffmpeg_exe)
    with pytest.raises(StageFailed, match=message):
        decode.probe(src)
    with pytest.raises(StageFailed, match=message):
        decode.decode_media(src, tmp_path / "out.wav", ffmpeg_exe=ffmpeg_exe)


def test_zero_length_audio(tmp_path: Path, ffmpeg_exe: str) -> None:
    src = lavfi(ffmpeg_exe, "anullsrc=r=16000:cl=mono", tmp_path / "zero.wav", "-t", "0")
    with pytest.raises(StageFailed, match=r"the audio is empty \(0 s\)|no audio track"):
        decode.decode_media(src, tmp_path / "out.wav", ffmpeg_exe=ffmpeg_exe)


def test_truncated_files(tmp_path: Path, ffmpeg_exe: str) -> None:
    # An m4a cut short loses its index: unreadable.
    m4a = tmp_path / "cut.m4a"
    m4a.write_bytes((AUDIO / "jfk/jfk.m4a").read_bytes()[:3000])
    with pytest.raises(StageFailed, match="could not read|not a readable"):
        decode.decode_media(m4a, tmp_path / "out.wav", ffmpeg_exe=ffmpeg_exe)
    # A FLAC cut short still decodes its first frames; the header's duration gives it away.
    flac = tmp_path / "cut.flac"
    flac.write_bytes((AUDIO / "jfk/jfk.flac").read_bytes()[:300_000])
    expected = decode.probe(flac).duration_s
    assert expected == pytest.approx(11.0, abs=0.05)
    with pytest.raises(StageFailed, match="truncated"):
        decode.decode_media(flac, tmp_path / "out.wav", ffmpeg_exe=ffmpeg_exe)


def test_load_wav_rejects_stereo(tmp_path: Path) -> None:
    with pytest.raises(StageFailed, match="not 16-bit mono"):
        decode.load_wav(AUDIO / "misc/stereo_diarization.wav")


def test_find_ffmpeg_runs() -> None:
    out = subprocess.run([decode.find_ffmpeg(), "-version"], capture_output=True, check=True)
    assert out.stdout.startswith(b"ffmpeg version")
