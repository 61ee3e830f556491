"""diarize / transcribe stage functions with fake engines; ModelManager without models."""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from core.errors import BadInput, ModelUnavailable
from core.settings import Settings
from stages import diarize, transcribe
from stages.diarize import DiarizeParams
from stages.engines.base import weights_fingerprint
from stages.engines.models import ModelManager
from stages.transcribe import TranscribeParams
from tests.fakes import FakeDiarizer, FakeTranscriber, segment


def record() -> tuple[list[tuple[str, float, float]], object]:
    calls: list[tuple[str, float, float]] = []
    return calls, lambda step, done, total: calls.append((step, done, total))


@pytest.mark.parametrize(
    "values",
    [
        {"min_speakers": 3, "max_speakers": 2},
        {"num_speakers": 5, "max_speakers": 4},
        {"num_speakers": 1, "min_speakers": 2},
    ],
)
def test_inconsistent_speaker_counts_are_bad_input(values: dict[str, int]) -> None:
    with pytest.raises(BadInput):
        DiarizeParams(**values)
    with pytest.raises(BadInput):
        DiarizeParams.parse(**values)


def test_out_of_range_counts_are_bad_input_through_parse() -> None:
    with pytest.raises(BadInput, match="num_speakers"):
        DiarizeParams.parse(num_speakers=0)


def test_consistent_counts_pass_through_to_the_engine() -> None:
    engine = FakeDiarizer()
    params = DiarizeParams(min_speakers=2, max_speakers=4)
    calls, progress = record()
    out = diarize.run(np.zeros(16000, dtype=np.float32), params, engine, progress)  # type: ignore[arg-type]
    assert engine.calls == 1 and out.turns == [] and calls


@pytest.mark.parametrize("samples", [0, 100, 7999])
def test_too_short_audio_gives_no_turns_without_calling_the_model(samples: int) -> None:
    engine = FakeDiarizer()
    out = diarize.run(np.zeros(samples, dtype=np.float32), DiarizeParams(), engine, lambda *a: None)
    assert engine.calls == 0
    assert (out.turns, out.exclusive_turns, out.speakers) == ([], [], [])
    assert out.embedding_model == engine.embedding_model_id


@pytest.mark.parametrize(
    ("given", "expected"), [(None, None), ("", None), ("auto", None), (" FR ", "fr")]
)
def test_language_is_normalised(given: str | None, expected: str | None) -> None:
    assert TranscribeParams(language=given).language == expected


def test_transcribe_passes_options() -> None:
    engine = FakeTranscriber([segment(("Hi.", 0.0, 0.4))])
    params = TranscribeParams(language="en", beam_size=1, vad_filter=False)
    out = transcribe.run(np.zeros(16000, dtype=np.float32), params, engine, lambda *a: None)
    assert engine.calls == [{"language": "en", "beam_size": 1, "vad_filter": False}]
    assert out.duration_s == 1.0 and out.segments[0].text == "Hi."


def test_transcribe_empty_audio() -> None:
    engine = FakeTranscriber()
    out = transcribe.run(np.zeros(0, dtype=np.float32), TranscribeParams(), engine, lambda *a: None)
    assert engine.calls == [] and out.segments == [] and out.language == "und"


def test_beam_size_bounds() -> None:
    with pytest.raises(ValueError):
        TranscribeParams(beam_size=0)


# ---------------------------------------------------------------- model manager (no loading)


def test_missing_weights_name_the_path_and_the_setting(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    settings.models.asr_dir = tmp_path / "no-whisper"
    settings.models.segmentation_path = tmp_path / "no-seg"
    settings.models.embedding_path = tmp_path / "no-campp.pt"
    manager = ModelManager(settings)
    with pytest.raises(ModelUnavailable, match=r"no-whisper.*SCRIBE_MODELS__ASR_DIR"):
        manager.transcriber_id()
    with pytest.raises(ModelUnavailable, match=r"no-seg.*SCRIBE_MODELS__SEGMENTATION_PATH"):
        manager.diarizer_id()
    with pytest.raises(ModelUnavailable, match=r"no-campp.pt.*SCRIBE_MODELS__EMBEDDING_PATH"):
        manager.encoder_id()
    assert manager.load_times == {}


def test_models_load_once_under_concurrency(tmp_path: Path) -> None:
    manager = ModelManager(Settings(data_dir=tmp_path))
    loads: list[int] = []

    def slow_load() -> object:
        loads.append(1)
        time.sleep(0.05)
        return object()

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: manager._once("encoder", slow_load), range(8)))
    assert len(loads) == 1 and all(g is got[0] for g in got)
    assert manager.load_times["encoder"] >= 0.05


def test_weights_fingerprint_is_cached_on_disk(tmp_path: Path) -> None:
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"weights")
    cache = tmp_path / "fingerprints.json"
    digest = weights_fingerprint(weights, cache)
    assert digest == hashlib.sha256(b"weights").hexdigest()[:12]
    assert digest in cache.read_text()
    weights.write_bytes(b"other weights!")  # new size and mtime: a new fingerprint
    assert weights_fingerprint(weights, cache) == hashlib.sha256(b"other weights!").hexdigest()[:12]
