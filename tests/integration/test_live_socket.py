"""The live meetings' audio socket against a real gateway (uvicorn in a thread), PostgreSQL,
Redis and a file:// store: chunks acknowledged once stored, a dropped connection and a
gateway restart that lose nothing (stored duration = sent duration), bad chunks closed
with a code and a message, the key's max_duration_s, and Stop making the recording the
job's upload with its stages queued. No live worker runs here (tests/integration/
test_live_meeting.py runs one): the audio's path does not depend on it."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from cli.live_stream import BYTES_PER_SECOND, LiveStreamer
from cli.local import GatewayThread, free_port
from core.settings import LiveSettings, Settings
from storage.artifacts import ArtifactStore, upload_key
from tests.databases import own_settings

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def live_settings(settings: Settings, pg_admin_dsn: str, tmp_path: Path) -> Iterator[Settings]:
    with own_settings(
        settings, pg_admin_dsn, tmp_path, "live-socket", live=LiveSettings(idle_end_s=30)
    ) as own:
        yield own


@pytest.fixture
def gateway(live_settings: Settings) -> Iterator[GatewayThread]:
    gw = GatewayThread(live_settings, port=free_port())
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


def tone(seconds: float, freq: float = 440.0) -> bytes:
    t = np.arange(int(seconds * 16000)) / 16000
    return (np.sin(2 * np.pi * freq * t) * 8000).astype("<i2").tobytes()


def stored_upload(settings: Settings, job_id: str) -> tuple[float, bytes]:
    """(duration in seconds, PCM) of the job's upload, read back as a WAV file."""
    store = ArtifactStore.from_settings(settings)
    data = store.get_bytes(upload_key(job_id))
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        frames = w.readframes(w.getnframes())
        return w.getnframes() / 16000, frames


def job(gw: GatewayThread, job_id: str) -> dict[str, object]:
    resp = httpx.get(f"{gw.url}/v1/jobs/{job_id}")
    resp.raise_for_status()
    body: dict[str, object] = resp.json()
    return body


async def _stream(streamer: LiveStreamer, pcm: bytes) -> tuple[str, float, int, int]:
    try:
        job_id = await streamer.start()
        outcome = await streamer.stream(job_id, pcm)
        return job_id, outcome.stored_s, outcome.sent_bytes, outcome.reconnects
    finally:
        await streamer.aclose()


def test_dropped_connections_lose_no_audio(gateway: GatewayThread, live_settings: Settings) -> None:
    pcm = tone(6.0)
    streamer = LiveStreamer(gateway.url, speed=20.0, drop_after={2, 3, 7})
    job_id, stored_s, sent, reconnects = asyncio.run(_stream(streamer, pcm))
    assert reconnects == 3
    assert sent == len(pcm)
    assert stored_s == pytest.approx(len(pcm) / BYTES_PER_SECOND)
    duration, frames = stored_upload(live_settings, job_id)
    assert duration == pytest.approx(6.0)
    assert frames == pcm  # in order, nothing twice, nothing missing
    body = job(gateway, job_id)
    assert body["size_bytes"] == len(pcm) + 44
    stages = {s["stage"]: s["status"] for s in body["stages"]}  # type: ignore[attr-defined]
    assert stages["decode"] == "queued"  # Stop queued the graph on the recording


def test_gateway_restart_mid_meeting_loses_no_audio(live_settings: Settings) -> None:
    port = free_port()
    first = GatewayThread(live_settings, port=port)
    first.start()
    pcm = tone(8.0, 330.0)
    second: list[GatewayThread] = []

    async def go() -> tuple[str, float, int]:
        streamer = LiveStreamer(first.url, speed=8.0, reconnect_for_s=60)
        try:
            job_id = await streamer.start()
            task = asyncio.create_task(streamer.stream(job_id, pcm))
            while not streamer_acked(live_settings, job_id, 4):
                await asyncio.sleep(0.05)
            await asyncio.to_thread(first.stop)  # mid-meeting: chunks are still coming
            gw = GatewayThread(live_settings, port=port)
            await asyncio.to_thread(gw.start)
            second.append(gw)
            outcome = await task
            return job_id, outcome.stored_s, outcome.reconnects
        finally:
            await streamer.aclose()

    try:
        job_id, stored_s, reconnects = asyncio.run(go())
    finally:
        first.stop()
        for gw in second:
            gw.stop()
    assert reconnects >= 1
    assert stored_s == pytest.approx(8.0)
    duration, frames = stored_upload(live_settings, job_id)
    assert duration == pytest.approx(8.0)
    assert frames == pcm


def streamer_acked(settings: Settings, job_id: str, chunks: int) -> bool:
    from storage.live import LiveRecording

    return LiveRecording(ArtifactStore.from_settings(settings), job_id).next_seq() >= chunks


async def _raw(
    url: str, socket: str, frames: list[bytes | str]
) -> tuple[int, str, list[dict[str, Any]]]:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    answers: list[dict[str, Any]] = []
    async with connect(url.replace("http://", "ws://") + socket) as ws:
        try:
            answers.append(json.loads(await ws.recv()))
            for frame in frames:
                await ws.send(frame)
                answers.append(json.loads(await ws.recv()))
            while True:  # what the gateway says before it closes (an "ended")
                answers.append(json.loads(await ws.recv()))
        except ConnectionClosed as exc:
            assert exc.rcvd is not None
            return exc.rcvd.code, exc.rcvd.reason, answers
    raise AssertionError("unreachable: the loop above ends when the socket closes")


def _frame(seq: int, size: int) -> bytes:
    return struct.pack(">I", seq) + bytes(size)


def _start(gw: GatewayThread) -> tuple[str, str]:
    resp = httpx.post(f"{gw.url}/v1/live", json={})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    return body["job_id"], body["socket"]


@pytest.mark.parametrize(
    ("frames", "code", "words"),
    [
        ([struct.pack(">I", 0) + b"OggS" + bytes(100)], 4400, "not 16-bit PCM"),
        ([struct.pack(">I", 0) + bytes(101)], 4400, "not 16-bit PCM"),
        ([b"\x00\x01"], 4400, "4-byte number"),
        ([struct.pack(">I", 0) + bytes(32002)], 4413, "at most 32000"),
        (
            [struct.pack(">I", 0) + bytes(640), struct.pack(">I", 5) + bytes(640)],
            4409,
            "expected 1",
        ),
        (['{"type": "pause"}'], 4400, "control messages"),
    ],
)
def test_bad_chunks_close_with_a_code_and_keep_what_was_stored(
    gateway: GatewayThread,
    live_settings: Settings,
    frames: list[bytes | str],
    code: int,
    words: str,
) -> None:
    job_id, socket = _start(gateway)
    got, reason, answers = asyncio.run(_raw(gateway.url, socket, frames))
    assert (got, words in reason) == (code, True), reason
    assert answers[0] == {"type": "ready", "next_seq": 0, "stored_s": 0.0}
    from storage.live import LiveRecording

    recording = LiveRecording(ArtifactStore.from_settings(live_settings), job_id)
    acked = [a for a in answers if a.get("type") == "ack"]
    assert recording.next_seq() == len(acked)  # what was acknowledged stays stored


def make_key(settings: Settings, **limits: float) -> str:
    """A tenant's key, made through the real key store (migrated first)."""
    from storage.auth import AuthStore
    from storage.db import create_pool, migrate
    from tests.tenants import new_tenant

    async def go() -> str:
        assert settings.database_url
        pool = await create_pool(settings.database_url, max_size=1)
        try:
            await migrate(pool)
            return (await new_tenant(AuthStore(pool), **limits)).token
        finally:
            await pool.close()

    return asyncio.run(go())


def test_max_duration_ends_the_meeting(
    settings: Settings, pg_admin_dsn: str, tmp_path: Path
) -> None:
    """With auth on, a key whose max_duration_s is 2: the third second ends the meeting
    with 4403, and the two seconds stored go to the graph."""
    with own_settings(settings, pg_admin_dsn, tmp_path, "live-limit", auth="on") as own:
        key = make_key(own, max_duration_s=2.0)
        gw = GatewayThread(own, port=free_port())
        gw.start()
        try:
            headers = {"Authorization": f"Bearer {key}"}
            body = httpx.post(f"{gw.url}/v1/live", json={}, headers=headers).json()
            second = tone(1.0)
            frames: list[bytes | str] = [struct.pack(">I", i) + second for i in range(3)]
            socket = f"{body['socket']}?token={body['token']}"
            code, reason, answers = asyncio.run(_raw(gw.url, socket, frames))
            assert code == 4403 and "at most 2 s" in reason, reason
            assert answers[-1] == {"type": "ended", "reason": "max_duration", "stored_s": 2.0}
            duration, frames_stored = stored_upload(own, body["job_id"])
            assert duration == pytest.approx(2.0)
            assert frames_stored == second * 2
        finally:
            gw.stop()


def test_the_socket_needs_a_token_with_auth_on(
    settings: Settings, pg_admin_dsn: str, tmp_path: Path
) -> None:
    with own_settings(settings, pg_admin_dsn, tmp_path, "live-auth", auth="on") as own:
        key = make_key(own)
        gw = GatewayThread(own, port=free_port())
        gw.start()
        try:
            resp = httpx.post(
                f"{gw.url}/v1/live", json={}, headers={"Authorization": f"Bearer {key}"}
            )
            body = resp.json()
            code, reason, _ = asyncio.run(_raw(gw.url, body["socket"], []))
            assert code == 4401 and "key" in reason
            code, reason, _ = asyncio.run(_raw(gw.url, body["socket"] + "?token=forged.x", []))
            assert code == 4401 and "invalid" in reason
            with_token = f"{body['socket']}?token={body['token']}"
            stop = json.dumps({"type": "stop"})
            code, reason, answers = asyncio.run(_raw(gw.url, with_token, [stop]))
            assert code == 1000 and answers[-1]["type"] == "ended"
        finally:
            gw.stop()


def test_a_meeting_without_audio_ends_as_if_stopped(
    settings: Settings, pg_admin_dsn: str, tmp_path: Path
) -> None:
    """live.idle_end_s (here 1 s instead of 60) without a chunk: the gateway ends the
    meeting, says why, and the audio stored before goes to the graph."""
    quick = LiveSettings(idle_end_s=1.0)
    with own_settings(settings, pg_admin_dsn, tmp_path, "live-idle", live=quick) as own:
        gw = GatewayThread(own, port=free_port())
        gw.start()
        try:
            job_id, socket = _start(gw)
            code, reason, answers = asyncio.run(_raw(gw.url, socket, [_frame(0, 3200)]))
            assert code == 1000 and "idle" in reason
            assert answers[1] == {"type": "ack", "seq": 0, "stored_s": 0.1}
            assert answers[-1] == {"type": "ended", "reason": "idle", "stored_s": 0.1}
            duration, _ = stored_upload(own, job_id)
            assert duration == pytest.approx(0.1)
            stages = {s["stage"]: s["status"] for s in job(gw, job_id)["stages"]}  # type: ignore[attr-defined]
            assert stages["decode"] == "queued"
        finally:
            gw.stop()
