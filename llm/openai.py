"""A client for any OpenAI-compatible chat-completions server: Ollama, vLLM, llama.cpp's
server, or the embedded engine's own loopback server (llm/embedded.py).

A server that is down, refuses, answers with an error, or is slower than the timeout
raises `LanguageModelUnavailable` with a sentence naming the server and why, which the
summarize stage records as its failure and /v1/ask answers as a 503."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from core.errors import LanguageModelUnavailable
from llm.base import Message


class OpenAICompatible:
    """Blocking calls: the stage runs in a worker thread, the gateway calls it in one."""

    def __init__(
        self,
        url: str,
        model: str,
        *,
        key: str | None = None,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 5.0,
        context_tokens: int = 4096,
        temperature: float = 0.0,
        seed: int = 42,
        model_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.model_id = model_id or f"{model}@{self.url}"
        self.context_tokens = context_tokens
        self.temperature = temperature
        self.seed = seed
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
        )
        self._timeout_s = timeout_s
        # Fields the server takes besides OpenAI's (SCRIBE_LLM__EXTRA), e.g. llama.cpp's
        # {"cache_prompt": false}: greedy decoding that does not depend on the previous request.
        self.extra = dict(extra or {})

    def _body(self, messages: list[Message], max_tokens: int, stream: bool) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
            "stream": stream,
            **self.extra,
        }

    def _failure(self, exc: Exception) -> LanguageModelUnavailable:
        where = f"the language model server at {self.url}"
        if isinstance(exc, httpx.TimeoutException):
            why = f"did not answer within {self._timeout_s:g} s"
            if isinstance(exc, httpx.ConnectTimeout):
                why = "did not accept a connection in time"
            return LanguageModelUnavailable(f"{where} {why}")
        if isinstance(exc, httpx.HTTPStatusError):
            detail = exc.response.text[:200].strip() or exc.response.reason_phrase
            return LanguageModelUnavailable(
                f"{where} answered {exc.response.status_code}: {detail}"
            )
        return LanguageModelUnavailable(f"{where} cannot be reached ({type(exc).__name__}: {exc})")

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        json_schema: dict[str, Any] | None = None,
    ) -> str:
        body = self._body(messages, max_tokens, stream=False)
        if json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "strict": True, "schema": json_schema},
            }
        try:
            response = self._client.post(f"{self.url}/chat/completions", json=body)
            response.raise_for_status()
            doc = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise self._failure(exc) from None
        try:
            content = doc["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise LanguageModelUnavailable(
                f"the language model server at {self.url} answered without a message"
            ) from None
        return str(content or "")

    def stream(self, messages: list[Message], *, max_tokens: int) -> Iterator[str]:
        body = self._body(messages, max_tokens, stream=True)
        try:
            with self._client.stream("POST", f"{self.url}/chat/completions", json=body) as r:
                if r.is_error:
                    r.read()
                    r.raise_for_status()
                for line in r.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    try:
                        chunk = json.loads(data)
                        piece = chunk["choices"][0].get("delta", {}).get("content")
                    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                        continue
                    if piece:
                        yield str(piece)
        except httpx.HTTPError as exc:
            raise self._failure(exc) from None

    def close(self) -> None:
        self._client.close()
