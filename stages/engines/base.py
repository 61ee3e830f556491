"""The engine protocols stages depend on, and the weight fingerprint used in model ids."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from core.artifacts import Diarization, Transcript
from core.events import ProgressCallback

SAMPLE_RATE = 16000


@runtime_checkable
class Transcriber(Protocol):
    """Speech to text with word timestamps. Audio is float32 mono at 16 kHz."""

    model_id: str

    def transcribe(
        self,
        audio: np.ndarray,
        *,
        language: str | None,
        beam_size: int,
        vad_filter: bool,
        progress: ProgressCallback,
    ) -> Transcript: ...


@runtime_checkable
class Diarizer(Protocol):
    """Who spoke when. Labels are "S1", "S2", ... in order of first appearance."""

    model_id: str
    # The space `Diarization.speakers[i].embedding` lives in: voiceprints enrolled with an
    # encoder of the same id can be compared to it, any other cannot.
    embedding_model_id: str | None

    def diarize(
        self,
        audio: np.ndarray,
        *,
        num_speakers: int | None,
        min_speakers: int | None,
        max_speakers: int | None,
        progress: ProgressCallback,
    ) -> Diarization: ...


@runtime_checkable
class SpeakerEncoder(Protocol):
    """One L2-normalised voice embedding for a whole clip (enrollment)."""

    model_id: str

    def embed(self, audio: np.ndarray) -> np.ndarray: ...


# ---------------------------------------------------------------- weight fingerprints

_fingerprints: dict[tuple[str, int, int], str] = {}
_fingerprint_lock = threading.Lock()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


def weights_fingerprint(path: Path, cache_file: Path | None = None) -> str:
    """First 12 hex digits of the file's sha256, cached on (path, size, mtime).

    Model ids go into artifact keys, so they must change when the weights change, but
    hashing hundreds of MB on every job would be wasteful: the in-memory cache serves a
    process, the optional json file serves the next process.
    """
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _fingerprint_lock:
        if key in _fingerprints:
            return _fingerprints[key]
        disk: dict[str, str] = {}
        disk_key = f"{key[0]}|{key[1]}|{key[2]}"
        if cache_file is not None and cache_file.exists():
            try:
                disk = json.loads(cache_file.read_text())
            except (OSError, ValueError):
                disk = {}  # a damaged cache is only a cache: rebuild it
        digest = disk.get(disk_key) or _sha256(path)[:12]
        _fingerprints[key] = digest
        if cache_file is not None and disk.get(disk_key) != digest:
            disk[disk_key] = digest
            try:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(disk, indent=1, sort_keys=True))
                tmp.replace(cache_file)
            except OSError:
                pass  # read-only model directory: the in-memory cache still works
        return digest


def l2_normalise(vector: np.ndarray) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v
