"""Enrollment clips against the worker's real decode path: probed like uploads, held to the
per-clip limit, the API key's duration limit and the total for one enrollment.

Every case here is refused before the speaker-embedding model is asked for, so the worker
state is a stand-in (`ClipsOnlyState`, named as such) holding the settings and a real
file:// store; `models` is absent on purpose: touching it fails the test.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from core.errors import BadInput
from core.settings import Settings
from stages import compute
from stages.decode import find_ffmpeg
from storage.artifacts import ArtifactStore


@dataclass
class ClipsOnlyState:
    settings: Settings
    store: ArtifactStore


@pytest.fixture
def state(tmp_path: Path) -> ClipsOnlyState:
    settings = Settings(data_dir=tmp_path, enroll_max_clip_s=60.0, enroll_max_total_s=50.0)
    return ClipsOnlyState(settings, ArtifactStore("file", str(tmp_path / "artifacts")))


def clip(state: ClipsOnlyState, name: str, seconds: float) -> str:
    """A clip of `seconds` of tone, as a small MP3 (8 kHz, 8 kbit/s), in the store."""
    out = Path(state.settings.data_dir) / f"{name}.mp3"
    source = f"sine=f=300:d={seconds}:r=8000"
    cmd = [find_ffmpeg(), "-nostdin", "-v", "error", "-f", "lavfi", "-i", source,
           "-c:a", "libmp3lame", "-b:a", "8k", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=60)
    key = f"speakers/x/{name}"
    state.store.put_file(key, out)
    return key


def enroll(state: ClipsOnlyState, keys: list[str], max_duration_s: float | None = None) -> Any:
    return compute.enroll(cast(Any, state), keys, max_duration_s)


def test_a_long_clip_is_refused_with_the_limit(state: ClipsOnlyState) -> None:
    state.settings = state.settings.model_copy(update={"enroll_max_total_s": 300.0})
    long = clip(state, "long", 120)
    assert len(state.store.get_bytes(long)) < 200_000  # a small file of long audio
    with pytest.raises(BadInput, match=r"^clip 1: the clip lasts 2\.0 min; the limit is 60\.0 s$"):
        enroll(state, [long])


def test_the_keys_duration_limit_applies_to_clips(state: ClipsOnlyState) -> None:
    keys = [clip(state, "a", 20)]
    with pytest.raises(BadInput, match=r"^clip 1: the clip lasts 20\.0 s; the limit is 10\.0 s$"):
        enroll(state, keys, max_duration_s=10.0)


def test_clips_together_are_held_to_the_total(state: ClipsOnlyState) -> None:
    keys = [clip(state, n, 20) for n in ("a", "b", "c")]
    with pytest.raises(BadInput) as err:
        enroll(state, keys)
    assert err.value.message == (
        "clip 3: the clip lasts 20.0 s; the limit is 10.0 s"
        " (what is left of the 50 s all clips may last together)"
    )


def test_the_keys_duration_limit_holds_for_the_clips_together(state: ClipsOnlyState) -> None:
    """An enrollment counts as a job, and a job's recording is held to the key's limit as a
    whole: two clips each under it are refused together above it."""
    keys = [clip(state, n, 8) for n in ("a", "b")]
    with pytest.raises(BadInput) as err:
        enroll(state, keys, max_duration_s=10.0)
    assert re.fullmatch(
        r"clip 2: the clip lasts 8\.\d s; the limit is \d\.\d s"
        r" \(what is left of the 10 s all clips may last together\)",
        err.value.message,
    ), err.value.message


def test_a_playlist_clip_is_refused(state: ClipsOnlyState, tmp_path: Path) -> None:
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"RIFF")
    key = "speakers/x/playlist"
    state.store.put_bytes(
        key, f"#EXTM3U\n#EXTINF:20.0,\nfile://{secret}\n#EXT-X-ENDLIST\n".encode()
    )
    with pytest.raises(BadInput, match=r"^clip 1: the file is not a readable audio or video"):
        enroll(state, [key])
