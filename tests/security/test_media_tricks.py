"""Media files that name other files, or lie about their length, against the real decode
path (PyAV's probe, then the ffmpeg executable), with the bundled ffmpeg and with the
system's one where installed: each build has its own idea of what is safe to follow.

Each trick sits in front of a "secret" (another file of the host, 20 s long); decode must
read only the uploaded bytes, so the secret never shows up in the result.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import StageFailed
from stages import decode

SECRET_S = 20.0


def _bundled() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


@pytest.fixture(scope="module", params=["bundled", "system"])
def ffmpeg_exe(request: pytest.FixtureRequest) -> str:
    if request.param == "bundled":
        return _bundled()
    system = shutil.which("ffmpeg")
    if system is None:
        pytest.skip("no system ffmpeg on the PATH (apt-get install ffmpeg)")
    return system


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The secret, a short MP3 and a long FLAC, made with the bundled ffmpeg."""
    d = tmp_path_factory.mktemp("media")
    ff = _bundled()

    def make(source: str, name: str, *options: str) -> None:
        cmd = [ff, "-nostdin", "-v", "error", "-f", "lavfi", "-i", source, *options, str(d / name)]
        subprocess.run(cmd, check=True, timeout=60)

    make(f"sine=f=880:d={SECRET_S}", "secret.wav", "-ar", "16000")
    make("sine=f=440:d=2", "short.mp3", "-c:a", "libmp3lame")
    make("sine=f=440:d=60", "long.flac", "-ar", "16000")
    return d


def _decode(src: Path, ffmpeg_exe: str, limit: float | None = None) -> float:
    """Seconds of audio decode produced from `src` (raises StageFailed like the stage)."""
    dst = src.with_name(src.name + ".out.wav")
    _, samples = decode.decode_media(src, dst, ffmpeg_exe=ffmpeg_exe, max_duration_s=limit)
    return samples / 16000


def _short_or_refused(src: Path, ffmpeg_exe: str) -> str:
    """Decode reads only the upload: the MP3 part (2 s) or nothing, never the secret."""
    try:
        seconds = _decode(src, ffmpeg_exe)
    except StageFailed as exc:
        assert "/" not in exc.message, exc.message  # no server path in what clients read
        return "refused"
    assert seconds < 3.0, f"{seconds:.1f} s decoded: something besides the upload was read"
    return "short"


def test_hls_playlist_before_mp3_frames(media: Path, ffmpeg_exe: str) -> None:
    playlist = (
        "#EXTM3U\n#EXT-X-TARGETDURATION:20\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:20.0,\nfile://{media / 'secret.wav'}\n#EXT-X-ENDLIST\n"
    )
    src = media / "hls.mp3"
    src.write_bytes(playlist.encode() + (media / "short.mp3").read_bytes())
    assert _short_or_refused(src, ffmpeg_exe) == "short"


@pytest.mark.parametrize(
    "entry",
    ["file://{secret}", "{secret}", "subfile,,start,0,end,0,,:{secret}", "data:audio/wav;base64,"],
    ids=["file-url", "path", "subfile", "data-url"],
)
def test_bare_hls_playlist_is_refused(media: Path, ffmpeg_exe: str, entry: str) -> None:
    src = media / "playlist.m3u8"
    line = entry.format(secret=media / "secret.wav")
    src.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:20\n#EXTINF:20.0,\n{line}\n#EXT-X-ENDLIST\n")
    with pytest.raises(StageFailed, match="not a readable audio or video file"):
        _decode(src, ffmpeg_exe)


def test_concat_list_is_refused_or_read_as_itself(media: Path, ffmpeg_exe: str) -> None:
    (media / "sub").mkdir(exist_ok=True)
    shutil.copy(media / "secret.wav", media / "sub" / "secret.wav")
    for name, names in (("concat.txt", "sub/secret.wav"), ("concat-abs.txt", media / "secret.wav")):
        listing = f"ffconcat version 1.0\nfile '{names}'\n".encode()
        bare = media / name
        bare.write_bytes(listing)
        with pytest.raises(StageFailed, match="not a readable audio or video file"):
            _decode(bare, ffmpeg_exe)
        glued = media / (name + ".mp3")
        glued.write_bytes(listing + (media / "short.mp3").read_bytes())
        assert _short_or_refused(glued, ffmpeg_exe) in ("short", "refused")


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP port that records every connection made to it."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.2)
    seen: list[bytes] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    seen.append(conn.recv(1024))
                except OSError:
                    seen.append(b"")

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1], seen
    stop.set()
    t.join(5)
    srv.close()


@pytest.mark.parametrize("scheme", ["http", "tcp"])
def test_playlist_naming_a_network_url_opens_nothing(
    media: Path, ffmpeg_exe: str, listener: tuple[int, list[bytes]], scheme: str
) -> None:
    port, seen = listener
    playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{scheme}://127.0.0.1:{port}/a\n"
    src = media / f"net-{scheme}.mp3"
    src.write_bytes(playlist.encode() + b"#EXT-X-ENDLIST\n" + (media / "short.mp3").read_bytes())
    _short_or_refused(src, ffmpeg_exe)
    bare = media / f"net-{scheme}.m3u8"
    bare.write_text(playlist + "#EXT-X-ENDLIST\n")
    with pytest.raises(StageFailed):
        _decode(bare, ffmpeg_exe)
    assert seen == [], f"ffmpeg connected to {scheme}://127.0.0.1:{port}"


def _lying_flac(media: Path) -> Path:
    """60 s of FLAC whose STREAMINFO block counts the samples of 2 s."""
    src = media / "lying.flac"
    data = bytearray((media / "long.flac").read_bytes())
    # fLaC, a 4-byte block header, then STREAMINFO: its bytes 10-17 end with the 36-bit
    # total sample count.
    (packed,) = struct.unpack(">Q", data[18:26])
    packed = (packed & ~((1 << 36) - 1)) | 2 * 16000
    data[18:26] = struct.pack(">Q", packed)
    src.write_bytes(data)
    return src


def test_header_that_lies_about_its_length_stops_at_the_limit(media: Path, ffmpeg_exe: str) -> None:
    src = _lying_flac(media)
    info = decode.probe(src)
    assert info.duration_s == pytest.approx(2.0)  # what the probe believes
    with pytest.raises(StageFailed, match=r"more than the limit of 10\.0 s") as err:
        _decode(src, ffmpeg_exe, limit=10.0)
    assert "announces 2.0 s" in err.value.message


def test_header_that_lies_about_its_length_is_refused(media: Path, ffmpeg_exe: str) -> None:
    with pytest.raises(StageFailed, match=r"header announces 2\.0 s but it holds 60\.0 s"):
        _decode(_lying_flac(media), ffmpeg_exe)


def test_honest_file_decodes_whole(media: Path, ffmpeg_exe: str) -> None:
    assert _decode(media / "secret.wav", ffmpeg_exe, limit=30.0) == pytest.approx(SECRET_S)
    assert _decode(media / "short.mp3", ffmpeg_exe) == pytest.approx(2.0, abs=0.1)
