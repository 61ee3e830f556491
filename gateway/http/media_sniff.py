"""Is this upload a recording? A look at its first bytes, before anything is stored.

`sniff` names the container of audio and video files by their magic bytes; `describe`
names what a file clearly is when it is not (an image, a PDF, an archive, text). The
decode stage still has the last word: ffmpeg reads far more formats than we name here,
so an unknown binary is let through and only what is *clearly* not media is refused.
"""

from __future__ import annotations

from core.errors import EmptyUpload, UnsupportedMedia

# How many leading bytes the checks look at (MPEG-TS needs two 188-byte packets).
SNIFF_BYTES = 512
# Anything shorter than this cannot hold a header and one frame of any format.
MIN_MEDIA_BYTES = 16

ACCEPTED_HINT = "upload a recording such as WAV, MP3, M4A, OGG, FLAC or WebM"

# ISO base media brands that are images, not recordings.
_IMAGE_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}


def _mpeg_audio_frame(head: bytes) -> bool:
    """An MPEG-1/2 audio frame header: 11 sync bits, a valid version, layer and bitrate."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version = (head[1] >> 3) & 0b11
    layer = (head[1] >> 1) & 0b11
    bitrate = head[2] >> 4
    rate = (head[2] >> 2) & 0b11
    return version != 0b01 and layer != 0 and bitrate not in (0, 0xF) and rate != 0b11


def _adts_frame(head: bytes) -> bool:
    """An AAC ADTS frame header (raw .aac files): sync, layer 00."""
    return len(head) >= 7 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0


def sniff(head: bytes) -> str | None:
    """The audio/video container these leading bytes start, or None when unrecognised."""
    h = head
    if h[:4] in (b"RIFF", b"RF64", b"BW64") and h[8:12] == b"WAVE":
        return "wav"
    if h[:4] == b"RIFF" and h[8:12] == b"AVI ":
        return "avi"
    if h[:4] == b"fLaC":
        return "flac"
    if h[:4] == b"OggS":
        return "ogg"
    if h[:3] == b"ID3":
        return "mp3"  # ID3-tagged: usually MP3, sometimes AAC or FLAC; ffmpeg will tell
    if h[4:8] == b"ftyp":
        brand = h[8:12]
        if brand in _IMAGE_BRANDS:
            return None
        if brand in (b"M4A ", b"M4B ", b"M4P "):
            return "m4a"
        if brand == b"qt  ":
            return "mov"
        if brand.startswith(b"3g"):
            return "3gp"
        return "mp4"
    if h[:4] == b"\x1a\x45\xdf\xa3":
        return "webm" if b"webm" in h[:64] else "mkv"
    if h[:4] == b"FORM" and h[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if h[:16] == bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"):
        return "asf"  # WMA / WMV
    if h[:5] == b"#!AMR":
        return "amr"
    if h[:4] == b"caff":
        return "caf"
    if h[:2] == b"\x0b\x77":
        return "ac3"
    if h[:4] == b".snd":
        return "au"
    if h[:4] == b"wvpk":
        return "wavpack"
    if h[:4] == b"MAC ":
        return "ape"
    if h[:4] == b"TTA1":
        return "tta"
    if h[:3] == b"FLV":
        return "flv"
    if h[:4] == b"\x00\x00\x01\xba":
        return "mpeg-ps"
    if len(h) > 188 and h[0] == 0x47 and h[188] == 0x47:
        return "mpeg-ts"
    if _mpeg_audio_frame(h):
        return "mp3"
    if _adts_frame(h):
        return "aac"
    return None


_KNOWN_OTHERS: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF", "a PDF document"),
    (b"%!PS", "a PostScript document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x28\xb5\x2f\xfd", "a zstd archive"),
    (b"\x7fELF", "a Linux executable"),
    (b"MZ", "a Windows executable"),
    (b"\xcf\xfa\xed\xfe", "a macOS executable"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office document"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"wOFF", "a web font"),
    (b"wOF2", "a web font"),
)


def _looks_like_text(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):
        return True  # a byte-order mark
    # The head may cut a multi-byte character in two: try dropping up to 3 trailing bytes.
    for cut in range(4):
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return bool(text) and all(c.isprintable() or c in "\t\r\n\f\v" for c in text)
    return False


def describe(head: bytes) -> str | None:
    """What a file that is not a recording clearly is ("a PNG image"), or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    if head[4:8] == b"ftyp" and head[8:12] in _IMAGE_BRANDS:
        return "a HEIC/AVIF image"
    for magic, what in _KNOWN_OTHERS:
        if head.startswith(magic):
            return what
    if _looks_like_text(head):
        stripped = head.lstrip().lower()
        if stripped.startswith((b"<!doctype html", b"<html")):
            return "an HTML page"
        if stripped.startswith(b"<?xml") or stripped.startswith(b"<svg"):
            return "an XML or SVG document"
        if stripped.startswith((b"{", b"[")):
            return "JSON text"
        return "text"
    return None


def check_media(head: bytes, size: int) -> str | None:
    """Raise a 4xx error unless the file may be a recording; returns the sniffed container.

    `head` is the first SNIFF_BYTES bytes (fewer when the file is shorter), `size` the
    bytes received so far (the whole size when the part has ended).
    """
    if size == 0:
        raise EmptyUpload("the uploaded file is empty; " + ACCEPTED_HINT)
    container = sniff(head)
    if container is not None:
        return container
    what = describe(head)
    if what is not None:
        raise UnsupportedMedia(
            f"this file does not look like audio or video (it looks like {what}); " + ACCEPTED_HINT
        )
    if size < MIN_MEDIA_BYTES:
        unit = "byte" if size == 1 else "bytes"
        raise UnsupportedMedia(
            f"this file is only {size} {unit} long, too short to be audio or video; "
            + ACCEPTED_HINT
        )
    return None  # unknown binary: the decode stage decides
