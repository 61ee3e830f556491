"""A real OpenAI-compatible server for tests: llama.cpp's own server (`python -m
llm.serve`) in a process of its own, with the small packaged SmolLM2 model. Also a port
that accepts connections and never answers, for "the model server is slow"."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def llm_server(data_dir: Path, model: str = "smollm2-135m") -> Iterator[str]:
    """The base URL (".../v1") of a running server; the process is ended on exit."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "SCRIBE_DATA_DIR": str(data_dir)}
    port = free_port()
    cmd = [sys.executable, "-m", "llm.serve", "--model", model, "--port", str(port)]
    cmd += ["--threads", "1", "--context", "2048"]
    drain: threading.Thread | None = None
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        url = None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            if line.startswith("listening on "):
                url = line.split()[-1]
                break
        assert url, f"llm.serve did not start (exit {proc.poll()})"
        # Keep reading its output so a full pipe never blocks it.
        drain = threading.Thread(target=proc.stdout.read, daemon=True)
        drain.start()
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            if drain is not None:
                drain.join(5)  # at the end of its output now
            proc.stdout.close()


@contextmanager
def silent_server() -> Iterator[str]:
    """A base URL whose port accepts connections and never sends a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()
