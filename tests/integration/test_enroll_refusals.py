"""Enrollment refuses what is not one person's voice, over HTTP with the real worker
(CAM++, Silero VAD, ffmpeg): a tone, silence, music-like noise, clips of two people.
Each refusal is a 422 that says what was found, and keeps nothing."""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from tests.integration.conftest import ScribeAPI

pytestmark = pytest.mark.slow

SR = 16000


def wav_bytes(samples: np.ndarray) -> bytes:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def tone(seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return 0.3 * np.sin(2 * np.pi * 440 * t)


def music_like(seconds: float = 8.0) -> np.ndarray:
    """A chord with a 2 Hz swell and a little noise: loud, tonal, not speech."""
    t = np.arange(int(seconds * SR)) / SR
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0, 523.2))
    noise = 0.02 * np.random.default_rng(7).standard_normal(len(t))
    return chord * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t)) + noise


def longest(audio_dir: Path, speaker: str, n: int) -> list[Path]:
    """The speaker's `n` longest LibriSpeech utterances (by size: well over 3 s of speech)."""
    utts = sorted((audio_dir / "librispeech" / speaker).glob("*.flac"))
    return sorted(utts, key=lambda p: (-p.stat().st_size, p.name))[:n]


def enroll(api: ScribeAPI, *clips: tuple[str, bytes, str]) -> tuple[int, dict[str, object]]:
    files = [("files", clip) for clip in clips]
    resp = api.http.post("/v1/speakers", data={"name": "Test Person"}, files=files, timeout=120)
    return resp.status_code, resp.json()


@pytest.mark.parametrize(
    ("what", "samples", "found"),
    [
        ("a 2 s tone", tone(2.0), "0.0 s of speech"),
        ("5 s of silence", np.zeros(5 * SR), "0.0 s of speech"),
        ("music-like noise", music_like(8.0), "0.0 s of speech"),
    ],
)
def test_a_clip_without_speech_is_refused_saying_how_much_was_found(
    api: ScribeAPI, what: str, samples: np.ndarray, found: str
) -> None:
    before = api.http.get("/v1/speakers").json()
    status, body = enroll(api, ("clip.wav", wav_bytes(samples), "audio/wav"))
    assert status == 422, (what, body)
    message = body["error"]["message"]  # type: ignore[index]
    assert f"clip 1 holds {found}" in message and "at least 3 s" in message, message
    assert api.http.get("/v1/speakers").json() == before  # nobody enrolled


def test_a_speech_clip_then_a_tone_names_the_tone(api: ScribeAPI, audio_dir: Path) -> None:
    speech = (audio_dir / "jfk" / "jfk.flac").read_bytes()
    status, body = enroll(
        api, ("jfk.flac", speech, "audio/flac"), ("tone.wav", wav_bytes(tone(2.0)), "audio/wav")
    )
    assert status == 422, body
    assert "clip 2 holds 0.0 s of speech" in body["error"]["message"]  # type: ignore[index]


def test_clips_of_two_people_are_refused_naming_the_odd_one(
    api: ScribeAPI, audio_dir: Path
) -> None:
    same = longest(audio_dir, "3331", 2)
    other = longest(audio_dir, "1688", 1)[0]
    clips = [(p.name, p.read_bytes(), "audio/flac") for p in (*same, other)]
    before = api.http.get("/v1/speakers").json()
    status, body = enroll(api, *clips)
    assert status == 422, body
    message = body["error"]["message"]  # type: ignore[index]
    assert "do not sound like one person" in message and "clip 3" in message, message
    assert "clip 1" not in message and "clip 2" not in message
    assert api.http.get("/v1/speakers").json() == before


def test_clips_of_one_person_are_enrolled(api: ScribeAPI, audio_dir: Path) -> None:
    clips = longest(audio_dir, "3331", 3)
    status, body = enroll(api, *[(p.name, p.read_bytes(), "audio/flac") for p in clips])
    assert status == 201, body
    try:
        assert body["num_clips"] == 3
    finally:
        assert api.http.delete(f"/v1/speakers/{body['id']}").status_code == 204
