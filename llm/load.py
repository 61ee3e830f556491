"""Which `LanguageModel` the settings name, and its id without loading it."""

from __future__ import annotations

from core.errors import LanguageModelUnavailable
from core.settings import Settings
from llm.base import LanguageModel
from llm.weights import PACKAGED, packaged_gguf


def language_model_id(settings: Settings) -> str:
    """What goes into the summary's artifact key: another model makes another summary."""
    llm = settings.llm
    if llm.engine == "openai":
        return f"{llm.model}@{llm.url}"
    if llm.path is not None:
        size = llm.path.stat().st_size if llm.path.exists() else 0
        return f"{llm.path.name}@{size}"
    packaged = PACKAGED.get(llm.model)
    return packaged.model_id if packaged else llm.model


def load_language_model(settings: Settings) -> LanguageModel:
    llm = settings.llm
    if llm.engine == "off":
        raise LanguageModelUnavailable(
            "no language model is configured (SCRIBE_LLM__ENGINE=off): set it to embedded,"
            " or to openai with SCRIBE_LLM__URL"
        )
    if llm.engine == "openai":
        if not llm.url:
            raise LanguageModelUnavailable(
                "SCRIBE_LLM__ENGINE=openai needs SCRIBE_LLM__URL, the server's base URL"
                " (e.g. http://llm:11434/v1 for Ollama)"
            )
        from llm.openai import OpenAICompatible

        return OpenAICompatible(
            llm.url,
            llm.model,
            key=llm.key,
            timeout_s=llm.timeout_s,
            connect_timeout_s=llm.connect_timeout_s,
            context_tokens=llm.context_tokens,
            temperature=llm.temperature,
            seed=llm.seed,
            model_id=language_model_id(settings),
            extra=llm.extra,
        )
    from llm.embedded import EmbeddedLlama

    if llm.path is not None:
        if not llm.path.is_file():
            raise LanguageModelUnavailable(f"SCRIBE_LLM__PATH: no GGUF file at {llm.path}")
        gguf = llm.path
    else:
        gguf = packaged_gguf(llm.model, settings.models_dir)
    return EmbeddedLlama(
        gguf,
        model_id=language_model_id(settings),
        context_tokens=llm.context_tokens,
        threads=llm.threads,
        timeout_s=llm.timeout_s,
        temperature=llm.temperature,
        seed=llm.seed,
    )


class LazyLanguageModel:
    """The gateway's language model for /v1/ask: loaded on the first question (the
    gateway starts without it), once; a failed load is not kept, so the next question
    tries again (a model server that came back)."""

    def __init__(self, settings: Settings) -> None:
        import threading

        self.settings = settings
        self._lock = threading.Lock()
        self._model: LanguageModel | None = None

    def get(self) -> LanguageModel:
        with self._lock:
            if self._model is None:
                self._model = load_language_model(self.settings)
            return self._model

    def close(self) -> None:
        with self._lock:
            if self._model is not None:
                self._model.close()
                self._model = None
