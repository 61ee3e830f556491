"""Live captions' pure logic: the LocalAgreement commit policy (with a named fake
recognizer), online speakers and their naming through identify's rules (with a named fake
encoder), and the recording's chunks joined into a WAV."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np

from core.events import CaptionWord
from stages.identify import Voiceprint
from stages.live.asr import LocalAgreement, agreed_prefix
from stages.live.speakers import OnlineSpeakers, split_at_pauses
from storage.artifacts import ArtifactStore, upload_key
from storage.live import LiveRecording, LiveSession

SR = 16000
SCRIPT = [(0.2 + 0.5 * i, f"w{i}") for i in range(20)]  # a word every half second


class FakeWordsRecognizer:
    """Unit tests only. Hears the scripted words whose end lies in the window it is given;
    the last word heard is misheard on every other pass (an unstable tail)."""

    def __init__(self) -> None:
        self.la: LocalAgreement | None = None
        self.calls = 0

    def __call__(self, audio: np.ndarray) -> list[CaptionWord]:
        assert self.la is not None
        self.calls += 1
        start = self.la.window_start
        end = start + len(audio) / SR
        words = [
            CaptionWord(start=t - start, end=t + 0.3 - start, word=w)
            for t, w in SCRIPT
            if t >= start and t + 0.3 <= end
        ]
        if words and self.calls % 2:
            words[-1] = words[-1].model_copy(update={"word": "misheard"})
        return words


def _speech(seconds: float) -> np.ndarray:
    return (np.sin(np.arange(int(seconds * SR)) / 7.0) * 0.1).astype(np.float32)


def _run(la: LocalAgreement, seconds: float, chunk_s: float = 0.5) -> list[list[CaptionWord]]:
    finals = []
    for _ in range(int(seconds / chunk_s)):
        la.add(_speech(chunk_s))
        if la.ready():
            finals.append(la.step().final)
    return finals


def test_a_word_is_final_only_once_two_passes_agree() -> None:
    fake = FakeWordsRecognizer()
    la = LocalAgreement(fake, window_s=6.0, step_s=1.0)
    fake.la = la
    finals = _run(la, 10.0)
    committed = [w.word for batch in finals for w in batch]
    assert "misheard" not in committed
    assert committed == [w for _, w in SCRIPT][: len(committed)]  # in order, none twice
    assert finals[0] == []  # the first pass has nothing to agree with
    last = la.finish()
    everything = committed + [w.word for w in last.final]
    assert everything == [w for t, w in SCRIPT if t + 0.3 <= 10.0]


def test_the_window_stays_bounded() -> None:
    fake = FakeWordsRecognizer()
    la = LocalAgreement(fake, window_s=4.0, step_s=1.0)
    fake.la = la
    longest = 0.0
    for _ in range(20):
        la.add(_speech(0.5))
        if la.ready():
            la.step()
        longest = max(longest, len(la.window) / SR)
    assert longest <= 4.0 + 1.0


def test_silence_runs_no_pass() -> None:
    fake = FakeWordsRecognizer()
    la = LocalAgreement(fake, step_s=1.0)
    fake.la = la
    for _ in range(10):
        la.add(np.zeros(SR // 2, dtype=np.float32))
        if la.ready():
            assert la.step().final == []
    assert fake.calls == 0
    assert len(la.window) / SR <= 1.0


def test_agreement_ignores_case_and_punctuation() -> None:
    a = [CaptionWord(start=0, end=1, word=w) for w in ("Hello,", "world", "again")]
    b = [CaptionWord(start=0, end=1, word=w) for w in ("hello", "World.", "a", "gain")]
    assert agreed_prefix(a, b) == 2


class FakeVoiceEncoder:
    """Unit tests only. A voice is the audio's constant level: 0.1 and 0.5 are two people."""

    model_id = "fake-encoder@1"

    def embed(self, audio: np.ndarray) -> np.ndarray:
        level = float(np.mean(audio))
        return np.array([1.0, 0.0, 0.0]) if level < 0.3 else np.array([0.0, 1.0, 0.0])


def _voice(level: float, seconds: float = 1.5) -> np.ndarray:
    return np.full(int(seconds * SR), level, dtype=np.float32)


def test_online_speakers_cluster_and_name_with_identify_rules() -> None:
    prints = [Voiceprint(id="p1", name="Ada", embedding=[0.0, 1.0, 0.0], model="fake-encoder@1")]
    speakers = OnlineSpeakers(FakeVoiceEncoder(), voiceprints=prints, threshold=0.6)
    a = speakers.assign(_voice(0.1))
    b = speakers.assign(_voice(0.5))
    assert (a, b) == ("SPEAKER_1", "SPEAKER_2")
    assert speakers.assign(_voice(0.1)) == "SPEAKER_1"
    assert speakers.assign(_voice(0.1, 0.3)) == "SPEAKER_1"  # too short: the last speaker
    # Ada's voiceprint matches the second voice only: the first stays unnamed.
    assert speakers.name_of("SPEAKER_2") == "Ada"
    assert speakers.name_of("SPEAKER_1") is None


def test_final_words_are_cut_at_pauses_with_their_audio() -> None:
    words = [
        CaptionWord(start=10.0, end=10.4, word="one"),
        CaptionWord(start=10.5, end=10.9, word="two"),
        CaptionWord(start=12.0, end=12.5, word="three"),
    ]
    audio = np.arange(int(2.5 * SR), dtype=np.float32)  # from 10.0 s to 12.5 s
    runs = split_at_pauses(words, audio)
    assert [[w.word for w in r] for r, _ in runs] == [["one", "two"], ["three"]]
    first, second = (a for _, a in runs)
    assert first is not None and second is not None
    assert len(first) == int(0.9 * SR) and first[0] == 0
    assert len(second) == int(0.5 * SR) and second[0] == int(2.0 * SR)


def test_a_voiceprint_of_another_model_names_nobody() -> None:
    prints = [Voiceprint(id="p1", name="Ada", embedding=[0.0, 1.0, 0.0], model="other@2")]
    speakers = OnlineSpeakers(FakeVoiceEncoder(), voiceprints=prints, threshold=0.6)
    label = speakers.assign(_voice(0.5))
    assert speakers.name_of(label) is None


def test_chunks_join_into_the_jobs_wav(tmp_path: Path) -> None:
    store = ArtifactStore("file", str(tmp_path))
    recording = LiveRecording(store, "job-1")
    recording.start(LiveSession(job_id="job-1"))
    parts = [bytes([i]) * 640 for i in range(3)]
    for seq, pcm in enumerate(parts):
        recording.put_chunk(seq, pcm)
    assert recording.next_seq() == 3 and recording.chunk_sizes() == [640] * 3
    stopped = recording.mark_stopped("stopped")
    assert stopped.duration_s == 3 * 640 / 32000
    assert recording.mark_stopped("idle").reason == "stopped"  # the first end stands
    stored = recording.assemble_wav()
    assert stored.key == upload_key("job-1")
    with wave.open(io.BytesIO(store.get_bytes(stored.key))) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        assert w.readframes(w.getnframes()) == b"".join(parts)
