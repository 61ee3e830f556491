"""pyannote.audio 4 as a Diarizer, and CAM++ as the matching SpeakerEncoder.

Two ways to build the diarizer:
- the packaged recipe (docs/models.md): segmentation-3.0 + CAM++ embeddings, centroid AHC;
- a local pyannote pipeline directory (production, e.g. speaker-diarization-community-1).
torch and pyannote are imported inside functions: importing this module stays cheap.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from core.artifacts import Diarization, DiarizedSpeaker, Turn
from core.errors import ModelUnavailable
from core.events import ProgressCallback
from stages.engines.base import SAMPLE_RATE, l2_normalise, weights_fingerprint

# Share of the total run time each pipeline step takes on CPU (measured on sample.wav and
# meeting_4spk.wav); used to turn step-wise hook calls into one 0..1 fraction.
STEP_WEIGHTS: dict[str, float] = {
    "segmentation": 0.25,
    "speaker_counting": 0.02,
    "embeddings": 0.70,
    "discrete_diarization": 0.03,
}


def _import_pyannote() -> None:
    """Import pyannote offline and without telemetry, hiding one expected warning."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    with warnings.catch_warnings():
        # torchcodec is uninstalled on purpose (docs/models.md, pitfalls): we pass waveforms.
        warnings.filterwarnings("ignore", message=r"\s*torchcodec is not installed")
        import pyannote.audio  # noqa: F401


def _require(path: Path, setting: str, what: str) -> Path:
    if not path.exists():
        raise ModelUnavailable(f"{what} not found at {path}; set {setting} to a local copy")
    return path


def _segmentation_weights(segmentation_path: Path) -> Path:
    return (
        segmentation_path / "pytorch_model.bin" if segmentation_path.is_dir() else segmentation_path
    )


# ---------------------------------------------------------------- model ids (no loading)


def campp_model_id(embedding_path: Path, fingerprint_cache: Path | None = None) -> str:
    _require(embedding_path, "SCRIBE_MODELS__EMBEDDING_PATH", "CAM++ weights")
    return f"campp:{embedding_path.stem}@{weights_fingerprint(embedding_path, fingerprint_cache)}"


def segmentation_id(segmentation_path: Path, fingerprint_cache: Path | None = None) -> str:
    seg = _require(
        _segmentation_weights(segmentation_path),
        "SCRIBE_MODELS__SEGMENTATION_PATH",
        "pyannote segmentation weights",
    )
    return f"{segmentation_path.name}@{weights_fingerprint(seg, fingerprint_cache)}"


def recipe_model_id(
    segmentation_path: Path,
    embedding_path: Path,
    *,
    threshold: float,
    min_cluster_size: int,
    segmentation_step: float = 0.1,
    fingerprint_cache: Path | None = None,
) -> str:
    seg_id = segmentation_id(segmentation_path, fingerprint_cache)
    emb_id = campp_model_id(embedding_path, fingerprint_cache)
    # Clustering options change the output, so they belong to the id (and the artifact key).
    step = "" if segmentation_step == 0.1 else f"-step{segmentation_step:g}"
    return f"pyannote:{seg_id}+{emb_id}/ahc-centroid-t{threshold:g}-m{min_cluster_size}{step}"


def pipeline_model_id(pipeline_dir: Path, fingerprint_cache: Path | None = None) -> str:
    config = _require(
        pipeline_dir / "config.yaml",
        "SCRIBE_MODELS__DIARIZATION_PIPELINE_DIR",
        "pyannote pipeline config.yaml",
    )
    return f"pyannote-pipeline:{pipeline_dir.name}@{weights_fingerprint(config, fingerprint_cache)}"


# ---------------------------------------------------------------- CAM++


class CamppEmbedding:
    """CAM++ with the interface of pyannote's PretrainedSpeakerEmbedding (docs/models.md,
    the diarization recipe)."""

    sample_rate = SAMPLE_RATE
    dimension = 192
    metric = "cosine"
    min_num_samples = 400

    def __init__(self, checkpoint: Path, device: str = "cpu") -> None:
        import torch
        from speakerlab.models.campplus.DTDNN import CAMPPlus

        _require(checkpoint, "SCRIBE_MODELS__EMBEDDING_PATH", "CAM++ weights")
        self.device = torch.device(device)
        self.model = CAMPPlus(feat_dim=80, embedding_size=192)
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state)
        self.model.eval().to(self.device)

    def embed(self, wav: Any) -> np.ndarray:
        """(T,) float32 tensor at 16 kHz -> (192,) raw (not normalised) embedding."""
        import torch
        import torchaudio.compliance.kaldi as kaldi

        with torch.inference_mode():
            wav = wav.to(self.device)
            # 80-dim Kaldi fbank, no dither, mean-normalised: what CAM++ was trained on.
            f = kaldi.fbank(wav[None], num_mel_bins=80, sample_frequency=SAMPLE_RATE, dither=0.0)
            out = self.model((f - f.mean(0, keepdim=True))[None])[0]
            return np.asarray(out.float().cpu().numpy(), dtype=np.float32)

    def __call__(self, waveforms: Any, masks: Any = None) -> np.ndarray:
        """(B, 1, T) waveforms, (B, frames) masks -> (B, 192); clustering skips NaN rows."""
        import torch

        out = np.full((len(waveforms), self.dimension), np.nan, dtype=np.float32)
        for i, w in enumerate(waveforms[:, 0]):
            if masks is not None:  # keep only the samples where this speaker is active
                m = torch.nn.functional.interpolate(masks[i][None, None], size=w.shape[0])[0, 0]
                w = w[m > 0.5]
            if w.shape[0] >= self.min_num_samples:
                out[i] = self.embed(w)
        return out


class CamppEncoder:
    """Enrollment embeddings in the same space as the recipe diarizer's centroids."""

    def __init__(
        self, checkpoint: Path, device: str = "cpu", *, fingerprint_cache: Path | None = None
    ) -> None:
        self.model_id = campp_model_id(checkpoint, fingerprint_cache)
        self._campp = CamppEmbedding(checkpoint, device)

    def embed(self, audio: np.ndarray) -> np.ndarray:
        import torch

        wav = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
        return l2_normalise(self._campp.embed(wav))


class PipelineEncoder:
    """Enrollment embeddings from a loaded pipeline's own embedding model (pipeline mode)."""

    def __init__(self, diarizer: PyannoteDiarizer) -> None:
        if diarizer.embedding_model_id is None:
            raise ModelUnavailable("this diarization pipeline has no speaker embedding model")
        self.model_id = diarizer.embedding_model_id
        self._embedding = diarizer.pipeline._embedding

    def embed(self, audio: np.ndarray) -> np.ndarray:
        import torch

        wav = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None, None]
        return l2_normalise(np.asarray(self._embedding(wav))[0])


# ---------------------------------------------------------------- diarizer


class PyannoteDiarizer:
    def __init__(self, pipeline: Any, model_id: str, embedding_model_id: str | None) -> None:
        self.pipeline = pipeline
        self.model_id = model_id
        self.embedding_model_id = embedding_model_id

    @classmethod
    def from_recipe(
        cls,
        segmentation_path: Path,
        embedding_path: Path,
        *,
        threshold: float = 0.7,
        min_cluster_size: int = 12,
        segmentation_step: float = 0.1,
        device: str = "cpu",
        fingerprint_cache: Path | None = None,
    ) -> PyannoteDiarizer:
        model_id = recipe_model_id(
            segmentation_path,
            embedding_path,
            threshold=threshold,
            min_cluster_size=min_cluster_size,
            segmentation_step=segmentation_step,
            fingerprint_cache=fingerprint_cache,
        )
        _import_pyannote()
        import torch
        from pyannote.audio import Model
        from pyannote.audio.core.plda import PLDA
        from pyannote.audio.pipelines import SpeakerDiarization

        seg = Model.from_pretrained(str(segmentation_path))
        if seg is None:
            raise ModelUnavailable(
                f"pyannote could not load segmentation weights from {segmentation_path}; "
                "set SCRIBE_MODELS__SEGMENTATION_PATH"
            )
        pipe = SpeakerDiarization(
            segmentation=seg,
            embedding=seg,  # placeholder that loads offline; replaced just below
            plda=PLDA.__new__(PLDA),  # required by the constructor, unused by AHC (pitfall 2)
            clustering="AgglomerativeClustering",
            embedding_exclude_overlap=True,
            # a step of 0.1 window (pyannote's default) embeds every second ~10 times
            segmentation_step=segmentation_step,
        )
        del pipe._embedding  # unregister the placeholder so pipe.to() leaves it alone
        pipe._embedding = CamppEmbedding(embedding_path, device)
        pipe.instantiate(
            {
                "segmentation": {"min_duration_off": 0.0},
                "clustering": {
                    "method": "centroid",
                    "threshold": threshold,
                    "min_cluster_size": min_cluster_size,
                },
            }
        )
        pipe.to(torch.device(device))
        return cls(pipe, model_id, campp_model_id(embedding_path, fingerprint_cache))

    @classmethod
    def from_pipeline_dir(
        cls, pipeline_dir: Path, *, device: str = "cpu", fingerprint_cache: Path | None = None
    ) -> PyannoteDiarizer:
        """Production: a local pipeline snapshot whose config.yaml names only local files."""
        model_id = pipeline_model_id(pipeline_dir, fingerprint_cache)
        _import_pyannote()
        import torch
        from pyannote.audio import Pipeline

        pipe = Pipeline.from_pretrained(pipeline_dir)
        if pipe is None:
            raise ModelUnavailable(
                f"pyannote could not load the pipeline in {pipeline_dir}; "
                "check SCRIBE_MODELS__DIARIZATION_PIPELINE_DIR and its config.yaml"
            )
        pipe.to(torch.device(device))
        return cls(pipe, model_id, f"{model_id}#embedding")

    def diarize(
        self,
        audio: np.ndarray,
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        progress: ProgressCallback,
    ) -> Diarization:
        import torch

        waveform = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
        hook = _progress_hook(progress)
        with warnings.catch_warnings():
            # pyannote warns when it finds fewer speakers than min_speakers; that is a
            # result, not a fault, and "warnings are errors" must not turn it into one.
            warnings.filterwarnings("ignore", message=r"\s*The detected number of speakers")
            out = self.pipeline(
                {"waveform": waveform, "sample_rate": SAMPLE_RATE},
                num_speakers=num_speakers,
                min_speakers=min_speakers,
                max_speakers=max_speakers,
                hook=hook,
            )
        hook("discrete_diarization", None)  # reports 1.0 unless the pipeline already did
        return to_diarization(out, self.embedding_model_id)


def _progress_hook(progress: ProgressCallback) -> Callable[..., None]:
    """pyannote hook(step, artifact, file=, completed=, total=) -> progress(step, 0..1, 1)."""
    starts: dict[str, float] = {}
    acc = 0.0
    for step, weight in STEP_WEIGHTS.items():
        starts[step] = acc
        acc += weight
    last = 0.0

    def hook(
        step_name: str,
        step_artifact: Any,
        file: Any = None,
        completed: float | None = None,
        total: float | None = None,
    ) -> None:
        nonlocal last
        if step_name not in STEP_WEIGHTS:
            return
        done = 1.0 if not total or completed is None else min(float(completed) / float(total), 1.0)
        fraction = min(starts[step_name] + STEP_WEIGHTS[step_name] * done, 1.0)
        if fraction > last:  # steps may report again at the end: never go backwards
            last = fraction
            progress(step_name, fraction, 1.0)

    return hook


def to_diarization(out: Any, embedding_model_id: str | None) -> Diarization:
    """pyannote DiarizeOutput -> Diarization with "S1", "S2", ... in order of first appearance."""
    overlapping, exclusive = out.speaker_diarization, out.exclusive_speaker_diarization
    rename: dict[Any, str] = {}
    for _segment, _track, label in overlapping.itertracks(yield_label=True):  # sorted by time
        rename.setdefault(label, f"S{len(rename) + 1}")
    for _segment, _track, label in exclusive.itertracks(yield_label=True):
        rename.setdefault(label, f"S{len(rename) + 1}")

    def turns(annotation: Any) -> list[Turn]:
        return [
            Turn(start=float(s.start), end=float(s.end), speaker=rename[label])
            for s, _t, label in annotation.itertracks(yield_label=True)
        ]

    exclusive_turns = turns(exclusive)
    talk: dict[str, float] = {}
    for t in exclusive_turns:
        talk[t.speaker] = talk.get(t.speaker, 0.0) + (t.end - t.start)

    # speaker_embeddings rows follow overlapping.labels() (pyannote's own order).
    centroids = out.speaker_embeddings
    row_of = {label: i for i, label in enumerate(overlapping.labels())}
    speakers = []
    for label, name in rename.items():
        embedding = None
        i = row_of.get(label)
        if centroids is not None and i is not None and i < len(centroids):
            row = np.asarray(centroids[i], dtype=np.float64)
            # NaN: no usable embedding; all zeros: pyannote padded a speaker it never clustered
            if np.all(np.isfinite(row)) and np.any(row != 0):
                embedding = [float(x) for x in l2_normalise(row)]
        speakers.append(
            DiarizedSpeaker(
                label=name, talk_time_s=round(talk.get(name, 0.0), 3), embedding=embedding
            )
        )
    return Diarization(
        turns=turns(overlapping),
        exclusive_turns=exclusive_turns,
        speakers=speakers,
        embedding_model=embedding_model_id,
    )
