"""The real models, loaded from the packaged defaults through ModelManager (slow: ~40 s)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from core.settings import Settings
from stages import decode, diarize, identify, transcribe
from stages.diarize import DiarizeParams
from stages.engines.models import ModelManager, package_dir
from stages.identify import Voiceprint
from stages.transcribe import TranscribeParams

pytestmark = pytest.mark.slow

AUDIO = Path(__file__).resolve().parents[2] / "tests" / "data" / "audio"
LIBRI = AUDIO / "librispeech"
PYANNOTE_SAMPLE = package_dir("pyannote.audio") / "sample"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelManager]:
    manager = ModelManager(Settings(data_dir=tmp_path_factory.mktemp("scribe")))
    yield manager
    manager.release()


@pytest.fixture(scope="module")
def wav_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wav")


def load(src: Path, wav_dir: Path) -> np.ndarray:
    """Through the real decode stage, as a job would."""
    dst = wav_dir / f"{src.parent.name}-{src.stem}.wav"
    if not dst.exists():
        decode.decode_media(src, dst, ffmpeg_exe=decode.find_ffmpeg())
    return decode.load_wav(dst)


def progress_log() -> tuple[list[float], object]:
    seen: list[float] = []
    return seen, lambda step, done, total: seen.append(done / total)


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def test_models_load_once_and_ids_need_no_loading(models: ModelManager) -> None:
    ids = (models.transcriber_id(), models.diarizer_id(), models.encoder_id())
    assert models.load_times == {}  # ids alone loaded nothing
    assert re.fullmatch(r"faster-whisper:whisper-base@d01c3014881c", ids[0])
    assert models.transcriber() is models.transcriber()
    assert models.diarizer() is models.diarizer()
    assert models.encoder() is models.encoder()
    assert (
        models.transcriber().model_id,
        models.diarizer().model_id,
        models.encoder().model_id,
    ) == ids
    assert models.diarizer().embedding_model_id == ids[2]  # enrollment and clusters share a space
    assert set(models.load_times) == {"transcriber", "diarizer", "encoder"}


def test_jfk_transcribes_with_ordered_word_timestamps(models: ModelManager, wav_dir: Path) -> None:
    audio = load(AUDIO / "jfk" / "jfk.flac", wav_dir)
    seen, progress = progress_log()
    result = transcribe.run(audio, TranscribeParams(), models.transcriber(), progress)  # type: ignore[arg-type]
    text = normalise(" ".join(s.text for s in result.segments))
    assert "ask not what your country can do for you" in text
    assert result.language == "en" and result.duration_s == pytest.approx(11.0, abs=0.05)
    words = [w for s in result.segments for w in s.words]
    assert len(words) == 22
    assert all(w.start <= w.end for w in words)
    assert all(a.start <= b.start for a, b in pairwise(words))
    assert all(0.0 <= w.probability <= 1.0 for w in words)
    assert seen[-1] == 1.0 and seen == sorted(seen)


def test_whisper_features_a_piece_at_a_time_are_faster_whispers_own(
    models: ModelManager, wav_dir: Path
) -> None:
    """The engine's piecewise log-Mel gives the values of faster-whisper's whole-file one
    (pieces of 5 s here, so JFK's 11 s cross two boundaries), at any length, the reflected
    edges included."""
    from faster_whisper.feature_extractor import FeatureExtractor

    from stages.engines.mel import PiecewiseFeatureExtractor

    installed = models.transcriber()._model.feature_extractor  # type: ignore[attr-defined]
    assert isinstance(installed, PiecewiseFeatureExtractor)
    whole = FeatureExtractor(**{"feature_size": installed.mel_filters.shape[0]})
    pieces = PiecewiseFeatureExtractor.like(whole, piece_frames=500)
    audio = load(AUDIO / "jfk" / "jfk.flac", wav_dir)
    rng = np.random.default_rng(0)
    short = (rng.standard_normal(n).astype(np.float32) for n in (0, 1, 41, 199, 201, 561))
    for wave in (audio, audio[:16_001], *short):
        expected, got = whole(wave), pieces(wave)
        assert got.shape == expected.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)  # a float's rounding


def test_sample_wav_diarizes_to_two_speakers(models: ModelManager, wav_dir: Path) -> None:
    audio = load(PYANNOTE_SAMPLE / "sample.wav", wav_dir)
    seen, progress = progress_log()
    result = diarize.run(audio, DiarizeParams(), models.diarizer(), progress)  # type: ignore[arg-type]

    assert [s.label for s in result.speakers] == ["S1", "S2"]
    assert result.turns[0].speaker == "S1"
    for s in result.speakers:
        assert s.embedding is not None and np.linalg.norm(s.embedding) == pytest.approx(
            1.0, abs=1e-4
        )
        assert s.talk_time_s > 5.0
    exclusive = sorted(result.exclusive_turns, key=lambda t: t.start)
    assert all(a.end <= b.start + 1e-6 for a, b in pairwise(exclusive))
    assert seen[-1] == 1.0 and seen == sorted(seen) and len(seen) > 4

    # DER-ish sanity against the reference: coverage of reference speech and label purity.
    reference = [
        (float(f[3]), float(f[3]) + float(f[4]), f[7])
        for f in (ln.split() for ln in (PYANNOTE_SAMPLE / "sample.rttm").read_text().splitlines())
    ]
    step = 0.01
    grid = np.arange(0.0, len(audio) / 16000, step)
    ref = np.full(grid.shape, "", dtype=object)
    hyp = np.full(grid.shape, "", dtype=object)
    for start, end, who in reference:
        ref[(grid >= start) & (grid < end)] = who
    for t in result.exclusive_turns:
        hyp[(grid >= t.start) & (grid < t.end)] = t.speaker
    speech = ref != ""
    coverage = float(np.mean(hyp[speech] != ""))
    # Best one-to-one mapping of 2 labels: try both.
    refs = sorted(set(ref[speech]))
    agree = max(
        float(np.mean([(r, h) in pairs for r, h in zip(ref[speech], hyp[speech], strict=True)]))
        for pairs in (
            {(refs[0], "S1"), (refs[1], "S2")},
            {(refs[0], "S2"), (refs[1], "S1")},
        )
    )
    assert coverage > 0.85, coverage
    assert agree > 0.85, agree  # docs/models.md: DER 5.2 % at collar 0 with this recipe


def test_campp_scores_same_speaker_high_and_others_low(models: ModelManager, wav_dir: Path) -> None:
    enc = models.encoder()

    def emb(name: str) -> np.ndarray:
        v = enc.embed(load(LIBRI / name.split("-")[0] / f"{name}.flac", wav_dir))
        assert v.ndim == 1 and np.linalg.norm(v) == pytest.approx(1.0, abs=1e-4)
        return v

    a, a2 = emb("2033-164914-0000"), emb("2033-164914-0002")
    b = emb("3005-163389-0000")
    c, d = emb("1998-15444-0000"), emb("3331-159605-0000")  # two women
    assert float(a @ a2) > 0.6
    assert float(a @ b) < 0.5
    assert float(c @ d) < 0.5


def test_enrolled_speakers_are_identified_in_a_small_meeting(
    models: ModelManager, wav_dir: Path
) -> None:
    enrollment = {
        "1998": ("1998-15444-0001", "1998-15444-0006"),
        "2033": ("2033-164914-0001", "2033-164914-0003"),
    }
    voiceprints = [
        Voiceprint(
            id=f"vp-{spk}",
            name=f"Reader {spk}",
            embedding=identify.enroll_embedding(
                [load(LIBRI / spk / f"{u}.flac", wav_dir) for u in utts], models.encoder()
            ),
            model=models.encoder().model_id,
        )
        for spk, utts in enrollment.items()
    ]
    gap = np.zeros(8000, dtype=np.float32)
    parts = ["1998-15444-0000", "2033-164914-0000", "1998-15444-0002", "2033-164914-0002"]
    meeting = np.concatenate(
        [x for u in parts for x in (load(LIBRI / u[:4] / f"{u}.flac", wav_dir), gap)]
    )

    diarization = diarize.run(meeting, DiarizeParams(), models.diarizer(), lambda *a: None)
    result = identify.run(
        diarization, voiceprints, threshold=0.6, embedding_model=diarization.embedding_model
    )
    named = {m.label: (m.speaker_id, m.score) for m in result.matches}
    assert named["S1"][0] == "vp-1998" and named["S2"][0] == "vp-2033", named
    assert all(score is not None and score > 0.8 for _, score in named.values())


def test_chunked_decoder_hears_one_window_as_the_sequential_one(
    models: ModelManager, wav_dir: Path
) -> None:
    """Speech that fits one window and is heard in one pass is one chunk decoded as the
    sequential decoder decodes it. fleurs-en-002's decoding stops at 8.5 s of 11.5: the
    rest is decoded in a second round, so its last words are heard too."""
    from stages.engines.whisper import FasterWhisperTranscriber

    sequential = FasterWhisperTranscriber(models.asr_dir(), batch_size=0)
    chunked = FasterWhisperTranscriber(models.asr_dir(), batch_size=8)
    audio = load(AUDIO / "jfk" / "jfk.flac", wav_dir)
    one = transcribe.run(audio, TranscribeParams(), sequential, lambda *a: None)
    other = transcribe.run(audio, TranscribeParams(), chunked, lambda *a: None)
    assert [s.text for s in other.segments] == [s.text for s in one.segments]
    assert other.language == one.language == "en"
    # The sequential decoder detects on features one frame longer (the STFT's last).
    assert other.language_probability == pytest.approx(one.language_probability, abs=0.01)
    words = [w for s in other.segments for w in s.words]
    assert [w.word for w in words] == [w.word for s in one.segments for w in s.words]
    assert all(a.start <= b.start for a, b in pairwise(words))
    assert words[-1].end <= other.duration_s + 0.05

    audio = load(AUDIO / "fleurs" / "en" / "fleurs-en-002.ogg", wav_dir)
    result = transcribe.run(audio, TranscribeParams(), chunked, lambda *a: None)
    text = normalise(" ".join(s.text for s in result.segments))
    assert text.startswith("to the north and within") and text.endswith("lord byron"), text
    words = [w for s in result.segments for w in s.words]
    assert all(a.start <= b.start for a, b in pairwise(words))
    assert words[-1].start > 9.0 and words[-1].end <= result.duration_s + 0.05


def test_chunked_decoder_over_several_windows(models: ModelManager, wav_dir: Path) -> None:
    """JFK four times with 3 s of silence between (53 s): two chunks, one language, every
    sentence heard once, every word inside the speech, never in a silence."""
    from stages.engines.whisper import FasterWhisperTranscriber

    jfk = load(AUDIO / "jfk" / "jfk.flac", wav_dir)
    gap = np.zeros(3 * 16000, dtype=np.float32)
    audio = np.concatenate([jfk, gap, jfk, gap, jfk, gap, jfk])
    seen, progress = progress_log()
    chunked = FasterWhisperTranscriber(models.asr_dir(), batch_size=8)
    result = transcribe.run(audio, TranscribeParams(), chunked, progress)  # type: ignore[arg-type]
    assert result.language == "en"
    text = normalise(" ".join(s.text for s in result.segments))
    assert text.count("ask not what your country can do for you") == 4, text
    words = [w for s in result.segments for w in s.words]
    assert all(a.start <= b.start for a, b in pairwise(words))
    step = len(jfk) / 16000 + 3.0
    for k in range(1, 4):  # the middle of each silence (speech ends ~0.4 s before 11 s)
        silence = (k * step - 2.0, k * step - 1.0)
        assert not [w for w in words if silence[0] < (w.start + w.end) / 2 < silence[1]]
    assert words[-1].end <= result.duration_s + 0.05
    assert seen[-1] == 1.0 and seen == sorted(seen)
