"""A live meeting's recording in the artifact store: numbered chunks of 16 kHz 16-bit mono
PCM, each its own object, written whole before it is acknowledged (docs/live.md).

One object per chunk, not one file appended to: S3 cannot append, and an object that is
whole or absent is what makes "acknowledged" mean "stored". The chunks are the recording;
`assemble_wav` joins them into the job's upload when the meeting ends. Markers beside
them say the meeting is live (`session.json`) or over (`stopped.json`); they survive a
gateway or worker restart, as the chunks do.
"""

from __future__ import annotations

import re
import struct
import time

from pydantic import BaseModel, Field

from storage.artifacts import ArtifactStore, StoredObject, job_prefix, upload_key

# The name the live draft is recorded under among the job's artifacts: not a stage of the
# graph (nothing reads it as an input), the live worker's output.
LIVE_DRAFT_STAGE = "live"
SAMPLE_RATE = 16000
BYTES_PER_SECOND = SAMPLE_RATE * 2  # 16-bit mono
_CHUNK_NAME = re.compile(r"(\d{8})\.pcm$")


class LiveSession(BaseModel):
    """What the gateway knew of the meeting when it started."""

    job_id: str
    started_at: float = Field(default_factory=time.time)
    language: str | None = None


class LiveStopped(BaseModel):
    stopped_at: float = Field(default_factory=time.time)
    reason: str = "stopped"  # stopped | idle | max_duration
    chunks: int = 0
    duration_s: float = 0.0


def live_prefix(job_id: str) -> str:
    return f"{job_prefix(job_id)}/live"


def chunk_key(job_id: str, seq: int) -> str:
    return f"{live_prefix(job_id)}/chunks/{seq:08d}.pcm"


def session_key(job_id: str) -> str:
    return f"{live_prefix(job_id)}/session.json"


def stopped_key(job_id: str) -> str:
    return f"{live_prefix(job_id)}/stopped.json"


def draft_key(job_id: str) -> str:
    return f"{live_prefix(job_id)}/draft.json"


class LiveRecording:
    """The chunks of one job's live recording (synchronous, like ArtifactStore)."""

    def __init__(self, store: ArtifactStore, job_id: str) -> None:
        self.store = store
        self.job_id = job_id

    # ------------------------------------------------------------ markers

    def start(self, session: LiveSession) -> None:
        self.store.put_json(session_key(self.job_id), session)

    def is_live(self) -> bool:
        return self.store.exists(session_key(self.job_id))

    def stopped(self) -> LiveStopped | None:
        key = stopped_key(self.job_id)
        if not self.store.exists(key):
            return None
        return self.store.get_json(key, LiveStopped)

    def mark_stopped(self, reason: str) -> LiveStopped:
        """Record the end once: a second call returns the first one's marker."""
        found = self.stopped()
        if found is not None:
            return found
        seqs = self.sequence_numbers()
        marker = LiveStopped(
            reason=reason, chunks=len(seqs), duration_s=self.stored_bytes() / BYTES_PER_SECOND
        )
        self.store.put_json(stopped_key(self.job_id), marker)
        return marker

    # ------------------------------------------------------------ chunks

    def put_chunk(self, seq: int, pcm: bytes) -> None:
        """Store chunk `seq` whole (temporary key, then moved into place)."""
        self.store.put_bytes(chunk_key(self.job_id, seq), pcm)

    def has_chunk(self, seq: int) -> bool:
        return self.store.exists(chunk_key(self.job_id, seq))

    def get_chunk(self, seq: int) -> bytes:
        return self.store.get_bytes(chunk_key(self.job_id, seq))

    def sequence_numbers(self) -> list[int]:
        """The stored chunks' numbers, in order."""
        folder = self.store.path(f"{live_prefix(self.job_id)}/chunks")
        try:
            names = self.store.fs.ls(folder, detail=False)
        except FileNotFoundError:
            return []
        found = (_CHUNK_NAME.search(str(n)) for n in names)
        return sorted(int(m.group(1)) for m in found if m)

    def next_seq(self) -> int:
        """The number the next chunk must carry: one past the last stored (0 at first).
        Chunks are stored in order, so the stored ones are 0..next_seq-1."""
        seqs = self.sequence_numbers()
        return seqs[-1] + 1 if seqs else 0

    def chunk_sizes(self) -> list[int]:
        """The stored chunks' sizes in bytes, in order of their numbers."""
        folder = self.store.path(f"{live_prefix(self.job_id)}/chunks")
        try:
            entries = self.store.fs.ls(folder, detail=True)
        except FileNotFoundError:
            return []
        sized = []
        for e in entries:
            m = _CHUNK_NAME.search(str(e["name"]))
            if m:
                sized.append((int(m.group(1)), int(e["size"])))
        return [size for _, size in sorted(sized)]

    def stored_bytes(self) -> int:
        return sum(self.chunk_sizes())

    def assemble_wav(self) -> StoredObject:
        """The chunks joined into one WAV file, stored as the job's upload."""
        seqs = self.sequence_numbers()
        sizes = self.stored_bytes()
        writer = self.store.writer(upload_key(self.job_id))
        try:
            writer.write(wav_header(sizes))
            for seq in seqs:
                writer.write(self.get_chunk(seq))
            return writer.commit()
        except BaseException:
            writer.abort()
            raise


def wav_header(data_bytes: int, sample_rate: int = SAMPLE_RATE) -> bytes:
    """A 44-byte RIFF header for `data_bytes` of 16-bit mono PCM."""
    byte_rate = sample_rate * 2
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, byte_rate, 2, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )
