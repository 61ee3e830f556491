"""The windowed diarizer (VAD -> CAM++ windows -> spectral clustering) on real speech,
selected through settings as a deployment would (slow: real models)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from core.settings import ModelSettings, Settings
from stages import diarize, identify
from stages.diarize import DiarizeParams
from stages.engines.models import ModelManager
from stages.engines.windowed import WindowedDiarizer
from stages.identify import Voiceprint

pytestmark = pytest.mark.slow

LIBRI = Path(__file__).resolve().parents[2] / "tests" / "data" / "audio" / "librispeech"
# (speaker, utterance) in meeting order; each speaker talks twice
PARTS = [
    ("1998", "1998-15444-0000"),
    ("2033", "2033-164914-0000"),
    ("3005", "3005-163389-0000"),
    ("1998", "1998-15444-0002"),
    ("2033", "2033-164914-0002"),
    ("3005", "3005-163389-0002"),
]
ENROLL = {
    "1998": ["1998-15444-0001", "1998-15444-0006"],
    "2033": ["2033-164914-0001", "2033-164914-0003"],
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelManager]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("scribe"), models=ModelSettings(diarizer="windowed")
    )
    manager = ModelManager(settings)
    yield manager
    manager.release()


def flac(utterance: str) -> np.ndarray:
    from faster_whisper import decode_audio

    return np.asarray(
        decode_audio(str(LIBRI / utterance[:4] / f"{utterance}.flac"), sampling_rate=16000),
        dtype=np.float32,
    )


def test_three_readers_are_found_and_two_enrolled_are_named(models: ModelManager) -> None:
    gap = np.zeros(16000, dtype=np.float32)
    pieces, spans, t = [], [], 0.0
    for spk, utt in PARTS:
        a = flac(utt)
        spans.append((t, t + len(a) / 16000, spk))
        pieces += [a, gap]
        t += (len(a) + len(gap)) / 16000
    meeting = np.concatenate(pieces)

    engine = models.diarizer()
    assert isinstance(engine, WindowedDiarizer)
    assert models.diarizer_id() == engine.model_id and engine.model_id.startswith("vad-campp:")
    assert engine.embedding_model_id == models.encoder_id()
    seen: list[float] = []
    result = diarize.run(
        meeting, DiarizeParams(), engine, lambda step, done, total: seen.append(done / total)
    )
    assert seen[-1] == 1.0 and seen == sorted(seen)
    assert [s.label for s in result.speakers] == ["S1", "S2", "S3"]
    assert result.turns == result.exclusive_turns

    # each reader's utterances carry one label, and the three labels differ
    def label_at(mid: float) -> str:
        return next(tr.speaker for tr in result.turns if tr.start <= mid <= tr.end)

    by_speaker: dict[str, set[str]] = {}
    for start, end, spk in spans:
        by_speaker.setdefault(spk, set()).add(label_at((start + end) / 2))
    assert all(len(v) == 1 for v in by_speaker.values()), by_speaker
    assert len({next(iter(v)) for v in by_speaker.values()}) == 3

    # out of the box: the threshold shipped for the packaged encoder names the enrolled two
    threshold, source = identify.resolve_threshold(None, None, None, models.encoder_id())
    assert source == "shipped"
    prints = [
        Voiceprint(
            id=spk,
            name=spk,
            model=models.encoder_id(),
            embedding=identify.enroll_embedding([flac(u) for u in utts], models.encoder()),
        )
        for spk, utts in ENROLL.items()
    ]
    named = {
        m.label: m.name
        for m in identify.run(
            result, prints, threshold=threshold, embedding_model=result.embedding_model
        ).matches
    }
    assert named[next(iter(by_speaker["1998"]))] == "1998"
    assert named[next(iter(by_speaker["2033"]))] == "2033"
    assert named[next(iter(by_speaker["3005"]))] is None  # a stranger stays unnamed
