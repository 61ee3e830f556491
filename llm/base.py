"""The `LanguageModel` protocol: chat completions, whole or streamed, in the OpenAI shape.

Both engines speak it (llm/openai.py over HTTP; llm/embedded.py, llama.cpp inside the
process, through the same client), so a unit test can put a named fake behind it and
everything above (summaries, answers) is written once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, TypedDict


class Message(TypedDict):
    role: str  # "system", "user", "assistant"
    content: str


class LanguageModel(Protocol):
    model_id: str  # what the artifact key and the answer name: model and revision
    context_tokens: int  # tokens the model reads at once (prompt and answer)

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        json_schema: dict[str, Any] | None = None,
    ) -> str:
        """The assistant's whole reply. With `json_schema`, the server constrains the
        reply to JSON of that schema (llama.cpp, Ollama and vLLM all honour
        `response_format: json_schema`). Raises core.errors.LanguageModelUnavailable when
        the model cannot be reached or does not answer in time."""
        ...

    def stream(self, messages: list[Message], *, max_tokens: int) -> Iterator[str]:
        """The reply, piece by piece as it is generated."""
        ...

    def close(self) -> None: ...


def estimate_tokens(text: str) -> int:
    """A cautious token count without a tokenizer: about 3 characters a token for English
    and French with Qwen's and SmolLM's vocabularies (their tokenizers give 3.5-4.5)."""
    return len(text) // 3 + 1
