"""Live meetings, gateway side (docs/live.md): start one (a job whose stages wait for its
end), take its audio over a WebSocket in numbered chunks, each acknowledged once stored,
and end it, which queues the graph on the recording like an upload.

The socket's protocol, in one place:
- the client connects to /v1/live/{job_id}/audio (a key in the Authorization header, or
  `?token=` from POST /v1/jobs/{id}/events/token or the start's answer);
- the gateway says `{"type": "ready", "next_seq": N, "stored_s": S}`: send chunk N next
  (0 at first; after a reconnect, the one after the last acknowledged);
- each binary message is one chunk: a 4-byte big-endian sequence number, then at most
  `live.chunk_max_bytes` (1 s) of 16 kHz 16-bit little-endian mono PCM; answered with
  `{"type": "ack", "seq": N, "stored_s": S}` once the chunk is stored whole. A chunk sent
  again (numbered below next_seq) is acknowledged again and not stored twice;
- the text message `{"type": "stop"}` ends the meeting: `{"type": "ended", ...}`, then a
  normal close. So do the key's max_duration_s (close code 4403) and `live.idle_end_s`
  without audio (1000, reason "idle");
- bad input closes the socket with a code and a message (`CLOSE_*` below); what was stored
  stays.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from core.artifacts import JobParams, LiveDraft
from core.errors import NotFound, ScribeError, Unauthorized
from core.settings import Settings
from events.live import MeetingEnd, end_meeting, send_live
from gateway.auth import (
    STREAM_TOKEN_TTL_S,
    Principal,
    api_key_of,
    check_stream_token,
    principal_for_key,
    stream_token,
)
from gateway.http.errors import ServiceUnavailable
from gateway.services.container import Services
from gateway.services.jobs import check_active_jobs, check_language
from storage.artifacts import upload_key
from storage.live import BYTES_PER_SECOND, LiveRecording, LiveSession, draft_key

# Close codes (4000-4999 are the application's): each comes with a message a person reads.
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_ENDED = 4410
CLOSE_NOT_AUDIO = 4400
CLOSE_OUT_OF_ORDER = 4409
CLOSE_TOO_LARGE = 4413
CLOSE_MAX_DURATION = 4403

# Signatures of encoded audio: a client that sends a file's bytes instead of raw PCM.
_CONTAINERS = (b"RIFF", b"OggS", b"\x1a\x45\xdf\xa3", b"ID3", b"fLaC", b"\xff\xfb")
_HEADER = struct.Struct(">I")


@dataclass(frozen=True)
class LiveStart:
    job_id: str
    token: str
    expires_in: int
    socket: str  # the socket's path
    sample_rate: int = 16000
    chunk_max_bytes: int = 32000


async def start(
    services: Services, settings: Settings, principal: Principal, language: str | None
) -> LiveStart:
    """A new live meeting: its job (stages pending until it ends), its session marker, and
    a live worker asked to follow it. 429 past the key's unfinished jobs; 503 when every
    live worker's room is taken."""
    params = check_language(JobParams(language=language))
    await check_active_jobs(services, principal)
    followed, capacity = await services.live_room.usage()
    if capacity and followed >= capacity:
        raise ServiceUnavailable(
            f"every live worker is busy ({followed} of {capacity} live meetings); try again"
            " when a meeting ends, or start another live worker (`scribe live-worker`)"
        )
    job_id = str(uuid.uuid4())
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    await services.jobs.create_job(
        job_id=job_id,
        filename=f"live {when}.wav",
        content_type="audio/wav",
        size_bytes=0,
        upload_uri=services.store.uri(upload_key(job_id)),
        upload_sha256="",  # set when the meeting ends (JobStore.start_recorded)
        params=params,
        owner=principal.owner,
        max_duration_s=principal.max_duration_s,
        max_active=principal.max_concurrent_jobs,
        stage_status="pending",
    )
    recording = LiveRecording(services.store, job_id)
    await asyncio.to_thread(recording.start, LiveSession(job_id=job_id, language=language))
    await send_live(services.live_broker, job_id)
    token = stream_token(services.secret, job_id, principal.owner, principal.key_id)
    return LiveStart(
        job_id=job_id,
        token=token,
        expires_in=STREAM_TOKEN_TTL_S,
        socket=f"/v1/live/{job_id}/audio",
        chunk_max_bytes=settings.live.chunk_max_bytes,
    )


async def stop(services: Services, principal: Principal, job_id: str, reason: str) -> MeetingEnd:
    """End the caller's live meeting (a second call changes nothing)."""
    await services.jobs.get_job(job_id, principal.owner)
    recording = LiveRecording(services.store, job_id)
    if not await asyncio.to_thread(recording.is_live):
        raise NotFound(f"job {job_id} is not a live meeting")
    return await end_meeting(
        store=services.store,
        jobs=services.jobs,
        bus=services.bus,
        broker=services.broker,
        graph=services.graph,
        job_id=job_id,
        reason=reason,
    )


async def draft(services: Services, principal: Principal, job_id: str) -> LiveDraft:
    """The captions the meeting showed, once its live worker has written them."""
    await services.jobs.get_job(job_id, principal.owner)
    key = draft_key(job_id)
    if not await asyncio.to_thread(services.store.exists, key):
        raise NotFound(f"job {job_id} has no live draft (not a live meeting, or not ended)")
    return await asyncio.to_thread(services.store.get_json, key, LiveDraft)


# ---------------------------------------------------------------- the socket


async def socket_principal(ws: WebSocket, settings: Settings, services: Services) -> Principal:
    if not settings.auth_enabled:
        return Principal()
    key = api_key_of(ws.headers)
    if key is not None:
        return await principal_for_key(services.auth, key)
    token = ws.query_params.get("token")
    job_id = ws.path_params.get("job_id", "")
    if not token:
        raise Unauthorized("send a key (Authorization: Bearer) or ?token= from the start")
    grant = check_stream_token(services.secret, token, str(job_id))
    if grant.owner is None or (grant.key_id and not await services.auth.key_active(grant.key_id)):
        raise Unauthorized("the stream token is invalid or has expired; ask for a new one")
    return Principal(owner=grant.owner, key_id=grant.key_id)


async def _close(ws: WebSocket, code: int, message: str) -> None:
    # A close reason is at most 123 bytes.
    await ws.close(code=code, reason=message.encode()[:123].decode(errors="ignore"))


async def serve_socket(ws: WebSocket, services: Services, settings: Settings, job_id: str) -> None:
    try:
        principal = await socket_principal(ws, settings, services)
        job = await services.jobs.get_job(job_id, principal.owner)
    except ScribeError as exc:
        code = CLOSE_UNAUTHORIZED if isinstance(exc, Unauthorized) else CLOSE_NOT_FOUND
        await ws.accept()
        await _close(ws, code, exc.message)
        return
    recording = LiveRecording(services.store, job_id)
    await ws.accept()
    if not await asyncio.to_thread(recording.is_live):
        await _close(ws, CLOSE_NOT_FOUND, f"job {job_id} is not a live meeting")
        return
    if await asyncio.to_thread(recording.stopped) is not None:
        await _close(ws, CLOSE_ENDED, "this meeting has ended; start a new one")
        return
    if not await services.live_room.followed(job_id):
        await send_live(services.live_broker, job_id)  # its worker died or never started
    session = _Socket(ws, services, settings, recording, principal)
    session.max_bytes = (
        int(job.max_duration_s * BYTES_PER_SECOND) if job.max_duration_s is not None else None
    )
    await session.run()


class _Socket:
    def __init__(
        self,
        ws: WebSocket,
        services: Services,
        settings: Settings,
        recording: LiveRecording,
        principal: Principal,
    ) -> None:
        self.ws = ws
        self.services = services
        self.settings = settings
        self.recording = recording
        self.principal = principal
        self.max_bytes: int | None = None
        self.next_seq = 0
        self.stored = 0

    def _stored_s(self) -> float:
        return round(self.stored / BYTES_PER_SECOND, 3)

    async def _send(self, message: dict[str, Any]) -> None:
        await self.ws.send_text(json.dumps(message))

    async def _end(self, reason: str, code: int = 1000, message: str | None = None) -> None:
        end = await stop(self.services, self.principal, self.recording.job_id, reason)
        await self._send(
            {"type": "ended", "reason": reason, "stored_s": round(end.stopped.duration_s, 3)}
        )
        await _close(self.ws, code, message or f"the meeting has ended ({reason})")

    async def run(self) -> None:
        self.next_seq = await asyncio.to_thread(self.recording.next_seq)
        self.stored = await asyncio.to_thread(self.recording.stored_bytes)
        await self._send({"type": "ready", "next_seq": self.next_seq, "stored_s": self._stored_s()})
        idle_s = self.settings.live.idle_end_s
        last_audio = time.monotonic()
        try:
            while True:
                left = last_audio + idle_s - time.monotonic()
                try:
                    message = await asyncio.wait_for(self.ws.receive(), timeout=max(left, 0.01))
                except TimeoutError:
                    await self._end("idle")
                    return
                if message["type"] == "websocket.disconnect":
                    return  # the meeting goes on: the client reconnects, or it ends idle
                data = message.get("bytes")
                if data is not None:
                    if not await self._chunk(data):
                        return
                    last_audio = time.monotonic()
                    continue
                if not await self._control(message.get("text") or ""):
                    return
        except WebSocketDisconnect:
            return

    async def _control(self, text: str) -> bool:
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("type") == "stop":
            await self._end("stopped")
            return False
        await _close(
            self.ws,
            CLOSE_NOT_AUDIO,
            'text messages are control messages: only {"type": "stop"} is known',
        )
        return False

    async def _chunk(self, data: bytes) -> bool:
        """Store one chunk and acknowledge it; False when the socket was closed."""
        limit = self.settings.live.chunk_max_bytes
        if len(data) < _HEADER.size + 2:
            await _close(self.ws, CLOSE_NOT_AUDIO, "a chunk is a 4-byte number, then PCM audio")
            return False
        (seq,) = _HEADER.unpack_from(data)
        pcm = data[_HEADER.size :]
        if len(pcm) > limit:
            await _close(
                self.ws,
                CLOSE_TOO_LARGE,
                f"chunk {seq} holds {len(pcm)} bytes; at most {limit} (1 s of 16 kHz PCM)",
            )
            return False
        if len(pcm) % 2 or pcm.startswith(_CONTAINERS):
            await _close(
                self.ws,
                CLOSE_NOT_AUDIO,
                f"chunk {seq} is not 16-bit PCM (an encoded file?): send 16 kHz s16le mono",
            )
            return False
        if seq < self.next_seq:  # sent again after a reconnect: stored already
            await self._send({"type": "ack", "seq": seq, "stored_s": self._stored_s()})
            return True
        if seq > self.next_seq:
            await _close(
                self.ws, CLOSE_OUT_OF_ORDER, f"chunk {seq} out of order: expected {self.next_seq}"
            )
            return False
        if self.max_bytes is not None and self.stored + len(pcm) > self.max_bytes:
            seconds = self.max_bytes / BYTES_PER_SECOND
            await self._end(
                "max_duration",
                CLOSE_MAX_DURATION,
                f"this key's meetings last at most {seconds:g} s; the meeting has ended",
            )
            return False
        await asyncio.to_thread(self.recording.put_chunk, seq, pcm)
        self.next_seq += 1
        self.stored += len(pcm)
        await self._send({"type": "ack", "seq": seq, "stored_s": self._stored_s()})
        return True
