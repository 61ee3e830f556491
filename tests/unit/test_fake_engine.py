"""`models.engine = "fake"` (the orchestration benchmark's setting) selects the named fakes,
and the default still means the real engines; no model is loaded here."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.settings import ModelSettings, Settings
from stages.engines.fake import FakeDiarizer, FakeEncoder, FakeTranscriber
from stages.engines.models import ModelManager


def test_default_engine_is_real() -> None:
    assert ModelSettings().engine == "real"


def test_fake_setting_selects_the_named_fakes(tmp_path: Path) -> None:
    models = ModelManager(Settings(data_dir=tmp_path, models=ModelSettings(engine="fake")))
    t, d, e = models.transcriber(), models.diarizer(), models.encoder()
    assert isinstance(t, FakeTranscriber)
    assert isinstance(d, FakeDiarizer)
    assert isinstance(e, FakeEncoder)
    assert models.transcriber_id() == FakeTranscriber.model_id
    assert models.diarizer_id() == FakeDiarizer.model_id
    assert models.encoder_id() == FakeEncoder.model_id
    assert models.loaded() == ["diarizer", "encoder", "transcriber"]
    # Results that give identify and merge something to do.
    audio = np.zeros(16000 * 2, dtype=np.float32)
    tr = t.transcribe(audio, language=None, beam_size=1, vad_filter=True, progress=lambda *a: None)
    dz = d.diarize(
        audio, num_speakers=None, min_speakers=None, max_speakers=None, progress=lambda *a: None
    )
    assert tr.segments and tr.duration_s == 2.0
    assert [s.label for s in dz.speakers] == ["S1"]
