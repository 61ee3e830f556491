"""llama.cpp's OpenAI-compatible server on its own, from the packaged weights:

    python -m llm.serve --model smollm2-135m --port 8081 [--key SECRET]

then point Scribe at it (SCRIBE_LLM__ENGINE=openai, SCRIBE_LLM__URL=http://127.0.0.1:8081/v1).
One model server for several workers and gateways on a machine without Ollama; the tests
use it as a real OpenAI-compatible server. It prints `listening on URL` once ready and
stops on SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from core.errors import LanguageModelUnavailable
from core.settings import Settings
from llm.embedded import EmbeddedLlama
from llm.weights import PACKAGED, packaged_gguf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llm.serve", description=__doc__)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b", help=", ".join(PACKAGED))
    parser.add_argument("--gguf", type=Path, help="a GGUF file instead of a packaged model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--key", help="the API key clients must send (default: none asked)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--context", type=int, default=4096)
    args = parser.parse_args(argv)
    settings = Settings()
    try:
        gguf = args.gguf or packaged_gguf(args.model, settings.models_dir)
        server = EmbeddedLlama(
            gguf,
            model_id=args.model,
            context_tokens=args.context,
            threads=args.threads,
            port=args.port,
            host=args.host,
            key=args.key,
            require_key=args.key is not None,
        )
    except LanguageModelUnavailable as exc:
        print(f"llm.serve: {exc.message}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"listening on {server.address}/v1", flush=True)
    stop.wait()
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
