"""llama.cpp inside the process (the prebuilt `xllamacpp` wheel), as the default engine.

xllamacpp runs llama.cpp's own server in a thread of this process, listening on a loopback
port with a key made here; the OpenAI-compatible client (llm/openai.py) talks to it, so the
embedded default and an Ollama / vLLM server in production go through one code path. The
GGUF weights come from packages (llm/weights.py) or a file named in settings."""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.errors import LanguageModelUnavailable
from llm.base import Message
from llm.openai import OpenAICompatible

log = logging.getLogger("scribe.llm")


def default_threads() -> int:
    """Half the cores this process may run on, at least one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // 2)


class EmbeddedLlama:
    """One model loaded in this process; `complete` and `stream` as LanguageModel says."""

    def __init__(
        self,
        gguf: Path,
        *,
        model_id: str,
        context_tokens: int = 4096,
        threads: int = 0,
        timeout_s: float = 600.0,
        temperature: float = 0.0,
        seed: int = 42,
        port: int = 0,
        host: str = "127.0.0.1",
        key: str | None = None,
        require_key: bool = True,
    ) -> None:
        try:
            import xllamacpp
        except ImportError:
            raise LanguageModelUnavailable(
                "the embedded language model needs the xllamacpp package"
                " (pip install xllamacpp==2026.10.11549), or set SCRIBE_LLM__ENGINE=openai"
            ) from None
        self.model_id = model_id
        self.context_tokens = context_tokens
        self.key = key or secrets.token_urlsafe(24)
        params = xllamacpp.CommonParams()
        params.model.path = str(gguf)
        params.n_ctx = context_tokens
        params.n_parallel = 1  # one request at a time: the CPU is the limit anyway
        n = threads or default_threads()
        params.cpuparams.n_threads = n
        params.cpuparams_batch.n_threads = n
        params.hostnames = [host]
        params.port = port
        if require_key:  # the loopback port is open to every local user: ask for a key
            params.api_keys = [self.key]
        params.warmup = False
        params.verbosity = -1 if not log.isEnabledFor(logging.DEBUG) else 3
        started = time.perf_counter()
        try:
            self._server: Any = xllamacpp.Server(params)
        except Exception as exc:
            raise LanguageModelUnavailable(
                f"llama.cpp could not load {gguf.name}: {type(exc).__name__}: {exc}"
            ) from None
        self.load_s = time.perf_counter() - started
        self.address = str(self._server.listening_address).rstrip("/")
        log.info("language model %s loaded in %.1f s (%d threads)", model_id, self.load_s, n)
        self._client = OpenAICompatible(
            f"{self.address}/v1",
            model_id,
            key=self.key,
            timeout_s=timeout_s,
            context_tokens=context_tokens,
            temperature=temperature,
            seed=seed,
            model_id=model_id,
            # A reply that does not depend on what was asked before: llama.cpp reuses the
            # previous prompt's cache otherwise, and a different batch split changes greedy
            # tokens now and then. Re-reading the prompt costs little next to generating.
            extra={"cache_prompt": False},
        )

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        json_schema: dict[str, Any] | None = None,
    ) -> str:
        return self._client.complete(messages, max_tokens=max_tokens, json_schema=json_schema)

    def stream(self, messages: list[Message], *, max_tokens: int) -> Iterator[str]:
        return self._client.stream(messages, max_tokens=max_tokens)

    def close(self) -> None:
        self._client.close()
        self._server = None
