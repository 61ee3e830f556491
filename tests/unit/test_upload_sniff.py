"""Magic-byte sniffing on real file headers from the repository's test audio."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import EmptyUpload, UnsupportedMedia
from gateway.http.media_sniff import SNIFF_BYTES, check_media, describe, sniff

REAL_FILES = {
    "misc/english.wav": "wav",
    "ami/trn01.wav": "wav",
    "jfk/jfk.flac": "flac",
    "fleurs/en/fleurs-en-004.ogg": "ogg",
    "misc/multilingual.mp3": "mp3",
    "jfk/jfk.m4a": "m4a",
    "jfk/jfk.webm": "webm",
    "misc/french.aiff": "aiff",
}


@pytest.mark.parametrize(("name", "container"), sorted(REAL_FILES.items()))
def test_real_recordings_are_accepted(audio_dir: Path, name: str, container: str) -> None:
    with open(audio_dir / name, "rb") as f:
        head = f.read(SNIFF_BYTES)
    assert sniff(head) == container
    assert describe(head) is None
    assert check_media(head, 10_000) == container


@pytest.mark.parametrize(
    ("head", "container"),
    [
        (b"\xff\xfb\x90\x64" + bytes(60), "mp3"),  # MPEG-1 layer III frame, no ID3 tag
        (b"\xff\xf1\x50\x80\x02\x1f\xfc" + bytes(57), "aac"),  # ADTS
        (b"\x00\x00\x00\x20ftypisom" + bytes(52), "mp4"),
        (b"\x00\x00\x00\x14ftypqt  " + bytes(52), "mov"),
        (b"\x1a\x45\xdf\xa3\x01\x00\x00\x00\x00\x00\x00\x23\x42\x82\x88matroska", "mkv"),
        (bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c") + bytes(48), "asf"),
        (b"#!AMR\n" + bytes(58), "amr"),
        (b"caff\x00\x01\x00\x00" + bytes(56), "caf"),
        (b"\x0b\x77\x12\x34" + bytes(60), "ac3"),
        (b"RF64\xff\xff\xff\xffWAVEds64" + bytes(48), "wav"),
    ],
)
def test_synthetic_headers(head: bytes, container: str) -> None:
    assert sniff(head) == container


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (b"Hello, this is the meeting agenda.\nItem 1: budget\n", "text"),
        ("Réunion du comité — ordre du jour\n".encode(), "text"),
        (b'{"not": "audio"}', "JSON text"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "an HTML page"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(40), "a PNG image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(40), "a JPEG image"),
        (b"GIF89a\x01\x00\x01\x00" + bytes(40), "a GIF image"),
        (b"PK\x03\x04\x14\x00\x06\x00" + bytes(40), "a ZIP archive (or an Office document)"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + bytes(40), "a PDF document"),
        (b"\x7fELF\x02\x01\x01\x00" + bytes(40), "a Linux executable"),
        (b"\x00\x00\x00\x18ftypheic" + bytes(40), "a HEIC/AVIF image"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(40), "a WebP image"),
    ],
)
def test_not_media_is_rejected(head: bytes, what: str) -> None:
    assert sniff(head) is None
    assert describe(head) == what
    with pytest.raises(UnsupportedMedia, match="does not look like audio or video"):
        check_media(head, len(head))


def test_text_cut_inside_a_character_is_still_text() -> None:
    head = ("é" * 300).encode()[: SNIFF_BYTES - 1]  # ends on half a character
    assert describe(head) == "text"


def test_empty_tiny_and_unknown() -> None:
    with pytest.raises(EmptyUpload):
        check_media(b"", 0)
    with pytest.raises(UnsupportedMedia, match="only 1 byte long"):
        check_media(b"\x00", 1)
    # Unknown binary is left to the decoder (ffmpeg knows more formats than we name).
    assert check_media(bytes(range(256)) * 2, 512) is None
