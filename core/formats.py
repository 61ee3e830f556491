"""Render a MeetingResult as JSON, SRT, WebVTT or plain text. Pure functions, no I/O."""

from __future__ import annotations

import re
from typing import Literal

from core.artifacts import MeetingResult, ResultSegment
from core.errors import BadInput

Format = Literal["json", "srt", "vtt", "txt"]
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
    "txt": "text/plain",
}
_LABEL = re.compile(r"S(\d+)")


def speaker_names(result: MeetingResult) -> dict[str, str]:
    """Label -> what a reader sees: the enrolled name, else "Speaker 2" for "S2"."""
    names = {}
    for s in result.speakers:
        names[s.id] = s.name or _default_name(s.id)
    return names


def _default_name(label: str) -> str:
    m = _LABEL.fullmatch(label)
    return f"Speaker {m.group(1)}" if m else label


def _name(names: dict[str, str], segment: ResultSegment) -> str:
    return names.get(segment.speaker) or _default_name(segment.speaker)


def _clock(seconds: float, sep: str) -> str:
    """HH:MM:SS<sep>mmm; rounding happens on whole milliseconds so 59.9996 s -> 01:00.000."""
    ms = max(0, round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _cue_times(segment: ResultSegment) -> tuple[float, float]:
    # Players skip cues whose end is not after their start (single zero-length words).
    return segment.start, max(segment.end, segment.start + 0.001)


def to_txt(result: MeetingResult) -> str:
    names = speaker_names(result)
    lines = []
    for seg in result.segments:
        total = max(0, int(seg.start))
        h, rest = divmod(total, 3600)
        m, s = divmod(rest, 60)
        lines.append(f"[{h:02d}:{m:02d}:{s:02d}] {_name(names, seg)}: {seg.text}")
    return "\n".join(lines) + ("\n" if lines else "")


def to_srt(result: MeetingResult) -> str:
    names = speaker_names(result)
    cues = []
    for i, seg in enumerate(result.segments, start=1):
        start, end = _cue_times(seg)
        cues.append(
            f"{i}\n{_clock(start, ',')} --> {_clock(end, ',')}\n{_name(names, seg)}: {seg.text}\n"
        )
    return "\n".join(cues)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(result: MeetingResult) -> str:
    names = speaker_names(result)
    cues = ["WEBVTT\n"]
    for seg in result.segments:
        start, end = _cue_times(seg)
        voice = _vtt_escape(_name(names, seg))
        cues.append(
            f"{_clock(start, '.')} --> {_clock(end, '.')}\n<v {voice}>{_vtt_escape(seg.text)}\n"
        )
    return "\n".join(cues)


def render(result: MeetingResult, fmt: str) -> tuple[str, str]:
    """(text, media type) for fmt in json | srt | vtt | txt."""
    if fmt == "json":
        text = result.model_dump_json(indent=2)
    elif fmt == "srt":
        text = to_srt(result)
    elif fmt == "vtt":
        text = to_vtt(result)
    elif fmt == "txt":
        text = to_txt(result)
    else:
        raise BadInput(f"unknown format {fmt!r}; use one of {', '.join(MEDIA_TYPES)}")
    return text, MEDIA_TYPES[fmt]
