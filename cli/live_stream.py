"""A client of a live meeting (docs/live.md): start it, send 16 kHz PCM over the audio
socket at real-time pace (or faster) in numbered chunks, reconnect and resume after the
last acknowledged chunk when the connection drops, follow the captions on the job's event
stream, and stop. Used by `scribe live`, the tests and bench/live.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from core.events import TERMINAL_EVENTS, JobEvent

SAMPLE_RATE = 16000
BYTES_PER_SECOND = SAMPLE_RATE * 2


class LiveRefused(Exception):
    """The server closed the socket on purpose (a code and its message) or refused."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message} (close code {code})")
        self.code, self.message = code, message


@dataclass
class LiveOutcome:
    job_id: str
    sent_bytes: int = 0
    acked_bytes: int = 0
    stored_s: float = 0.0  # what the server said it stored, at the end
    reconnects: int = 0
    ended: str | None = None  # the reason the server gave
    # When each chunk was sent (monotonic seconds), by sequence number.
    sent_at: dict[int, float] = field(default_factory=dict)
    started: float = 0.0  # monotonic time at which chunk 0's first sample "was spoken"


def read_pcm(path: str) -> bytes:
    """Any audio file as 16 kHz 16-bit mono PCM (ffmpeg)."""
    import subprocess

    from imageio_ffmpeg import get_ffmpeg_exe

    cmd = [get_ffmpeg_exe(), "-nostdin", "-v", "error", "-i", path, "-f", "s16le", "-ac", "1",
           "-ar", str(SAMPLE_RATE), "-"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, check=False)
    if done.returncode != 0 or not done.stdout:
        raise ValueError(f"{path}: not audio ffmpeg can read: {done.stderr.decode()[-300:]}")
    return done.stdout


class LiveStreamer:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        chunk_s: float = 0.5,
        speed: float = 1.0,
        language: str | None = None,
        on_event: Callable[[JobEvent, float], None] | None = None,
        drop_after: set[int] | None = None,
        reconnect_for_s: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.chunk_bytes = int(chunk_s * SAMPLE_RATE) * 2
        self.speed = speed
        self.language = language
        self.on_event = on_event
        self.drop_after = set(drop_after or ())  # test hook: drop the connection after these
        self.reconnect_for_s = reconnect_for_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=30.0)
        self.token: str | None = None
        self.socket_path = ""

    async def aclose(self) -> None:
        await self.http.aclose()

    async def start(self) -> str:
        body = {"language": self.language} if self.language else {}
        resp = await self.http.post("/v1/live", json=body)
        if resp.status_code >= 400:
            try:
                message = resp.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = resp.text
            raise LiveRefused(resp.status_code, message)
        answer = resp.json()
        self.token, self.socket_path = answer["token"], answer["socket"]
        return str(answer["job_id"])

    def _socket_url(self) -> str:
        url = self.base_url.replace("https://", "wss://").replace("http://", "ws://")
        url += self.socket_path
        return url if self.api_key else f"{url}?token={self.token}"

    async def stream(self, job_id: str, pcm: bytes, *, stop: bool = True) -> LiveOutcome:
        """Send `pcm` at `speed` times real time; with `stop`, end the meeting after it."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        chunks = [pcm[i : i + self.chunk_bytes] for i in range(0, len(pcm), self.chunk_bytes)]
        outcome = LiveOutcome(job_id=job_id, started=time.monotonic())
        pace = self.chunk_bytes / BYTES_PER_SECOND / self.speed
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else None
        give_up = time.monotonic() + self.reconnect_for_s
        first = True
        while True:
            try:
                async with connect(self._socket_url(), additional_headers=headers) as ws:
                    ready = json.loads(await ws.recv())
                    if ready.get("type") != "ready":
                        raise LiveRefused(1002, f"unexpected first message {ready!r}")
                    if not first:
                        outcome.reconnects += 1
                    first = False
                    give_up = time.monotonic() + self.reconnect_for_s
                    seq = int(ready["next_seq"])
                    outcome.acked_bytes = sum(len(c) for c in chunks[:seq])
                    while seq < len(chunks):
                        # Sent once its last sample has been spoken, as a microphone would.
                        due = outcome.started + (seq + 1) * pace
                        await asyncio.sleep(max(0.0, due - time.monotonic()))
                        await ws.send(struct.pack(">I", seq) + chunks[seq])
                        outcome.sent_at.setdefault(seq, time.monotonic())
                        outcome.sent_bytes = max(outcome.sent_bytes, sum(
                            len(c) for c in chunks[: seq + 1]))  # fmt: skip
                        ack = json.loads(await ws.recv())
                        if ack.get("type") == "ended":
                            outcome.ended, outcome.stored_s = ack["reason"], ack["stored_s"]
                            return outcome
                        if ack.get("type") != "ack" or ack.get("seq") != seq:
                            raise LiveRefused(1002, f"unexpected answer {ack!r}")
                        outcome.acked_bytes += len(chunks[seq])
                        outcome.stored_s = float(ack["stored_s"])
                        if seq in self.drop_after:
                            self.drop_after.discard(seq)
                            ws.transport.abort()  # as a lost network would: no close frame
                            raise ConnectionResetError("dropped on purpose")
                        seq += 1
                    if not stop:
                        return outcome
                    await ws.send(json.dumps({"type": "stop"}))
                    ended = json.loads(await ws.recv())
                    outcome.ended, outcome.stored_s = ended["reason"], ended["stored_s"]
                    return outcome
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else 1006
                if 4000 <= code < 5000:
                    raise LiveRefused(code, exc.rcvd.reason if exc.rcvd else "") from None
            except (OSError, ConnectionResetError):
                pass
            if time.monotonic() > give_up:
                raise LiveRefused(1006, "the gateway could not be reached again")
            await asyncio.sleep(0.3)

    async def follow(self, job_id: str, *, until: frozenset[str] = TERMINAL_EVENTS) -> None:
        """Call `on_event` for each event of the job until one of type `until`; resumes
        after the last event when the stream drops (a gateway restart)."""
        last: str | None = None
        while True:
            headers = {"Accept": "text/event-stream"}
            if last:
                headers["Last-Event-ID"] = last
            params = {} if self.api_key else {"token": self.token or ""}
            try:
                async with self.http.stream(
                    "GET", f"/v1/jobs/{job_id}/events", headers=headers, params=params,
                    timeout=None,
                ) as resp:  # fmt: skip
                    data: list[str] = []
                    async for line in resp.aiter_lines():
                        if line.startswith("data:"):
                            data.append(line[5:].strip())
                        elif line == "" and data:
                            event = JobEvent.model_validate_json("\n".join(data))
                            data = []
                            last = event.id or last
                            if self.on_event is not None:
                                self.on_event(event, time.monotonic())
                            if event.type in until:
                                return
            except httpx.TransportError:
                await asyncio.sleep(0.3)


async def run_live(
    streamer: LiveStreamer, pcm: bytes, *, wait_final: bool = True
) -> tuple[LiveOutcome, dict[str, Any] | None]:
    """Start, stream, stop; follow the captions meanwhile, and with `wait_final` the job
    until its transcript is made (then returned, as JSON)."""
    job_id = await streamer.start()
    until = TERMINAL_EVENTS if wait_final else frozenset({"live.ended"})
    follower = asyncio.create_task(streamer.follow(job_id, until=until))
    try:
        outcome = await streamer.stream(job_id, pcm)
        await follower
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
    result = None
    if wait_final:
        resp = await streamer.http.get(f"/v1/jobs/{job_id}/result")
        result = resp.json() if resp.status_code == 200 else None
    return outcome, result
