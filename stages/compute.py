"""The compute steps of the stages that lead to the result (decode, diarize, transcribe,
identify, merge; stages/specs.py pairs each with its description): read the input
artifacts, call the stage's pure `run`, write the output artifact. The embed stage, which
runs after the result, has its compute step in stages/embed.py. `enroll` is the compute
step of a speaker enrollment (`enroll_task` in stages/tasks.py): it decodes the clips
and averages their embeddings into one voiceprint.

All of them run in a worker thread (`asyncio.to_thread`): blocking I/O and model calls are
fine here.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.artifacts import (
    DecodedAudio,
    Diarization,
    Identification,
    ProvenanceEntry,
    Transcript,
)
from core.errors import BadInput, StageFailed
from stages import decode as decode_stage
from stages import diarize as diarize_stage
from stages import identify as identify_stage
from stages import merge as merge_stage
from stages import transcribe as transcribe_stage
from stages import voice
from storage.artifacts import ArtifactStore, StoredObject, upload_key

if TYPE_CHECKING:
    from stages.contract import StageInput
    from stages.runtime import WorkerState

ARTIFACT = "artifact.json"


def _load_audio(store: ArtifactStore, decoded: DecodedAudio) -> np.ndarray:
    with store.local_file(store.key_of(decoded.audio_uri), suffix=".wav") as path:
        return decode_stage.load_wav(path)


def decode(si: StageInput) -> StoredObject:
    store = si.state.store
    settings = si.state.settings
    # The server's limit, or the one of the API key that created the job when lower.
    limit = settings.max_duration_s
    if si.job.max_duration_s is not None:
        limit = min(limit, si.job.max_duration_s)
    with store.local_file(upload_key(si.job.id)) as src:
        si.progress("decode", 0, 1)
        with tempfile.TemporaryDirectory(prefix="scribe-decode-") as tmp:
            wav = Path(tmp) / "audio.wav"
            info, num_samples = decode_stage.decode_media(
                src, wav, ffmpeg_exe=decode_stage.find_ffmpeg(), max_duration_s=limit
            )
            audio = store.put_file(f"{si.key_dir}/audio.wav", wav)
    si.progress("decode", 1, 1)
    doc = DecodedAudio(
        audio_uri=audio.uri,
        audio_sha256=audio.sha256,
        num_samples=num_samples,
        duration_s=num_samples / 16000,
        source=info,
    )
    return store.put_json(f"{si.key_dir}/{ARTIFACT}", doc)


def diarize(si: StageInput) -> StoredObject:
    store = si.state.store
    decoded = si.read(DecodedAudio)
    try:
        params = diarize_stage.DiarizeParams.model_validate(
            {k: si.params[k] for k in ("num_speakers", "min_speakers", "max_speakers")}
        )
    except ValueError as exc:
        raise BadInput(f"invalid speaker counts: {exc}") from exc
    audio = _load_audio(store, decoded)
    models = si.state.models
    # The named fake engines keep their scripted embeddings.
    encoder = None if models.fake() else models.encoder()
    result = diarize_stage.run(audio, params, models.diarizer(), si.progress, encoder)
    return store.put_json(f"{si.key_dir}/{ARTIFACT}", result)


def transcribe(si: StageInput) -> StoredObject:
    store = si.state.store
    decoded = si.read(DecodedAudio)
    params = transcribe_stage.TranscribeParams(
        language=si.params["language"], beam_size=si.params["beam_size"], vad_filter=True
    )
    audio = _load_audio(store, decoded)
    result = transcribe_stage.run(audio, params, si.state.models.transcriber(), si.progress)
    return store.put_json(f"{si.key_dir}/{ARTIFACT}", result)


def identify(si: StageInput) -> StoredObject:
    store = si.state.store
    diarization = si.read(Diarization)
    voiceprints = [
        identify_stage.Voiceprint(id=i, name=n, model=m, embedding=e)
        for i, n, m, e in si.params["voiceprint_list"]
    ]
    threshold = float(si.params["threshold"])
    rules = identify_stage.IdentifyRules.from_params(threshold, si.params.get("rules"))
    result = identify_stage.run(
        diarization,
        voiceprints,
        threshold=threshold,
        embedding_model=si.state.models.encoder_id(),
        rules=rules,
    )
    return store.put_json(f"{si.key_dir}/{ARTIFACT}", result)


def merge(si: StageInput) -> StoredObject:
    # Its inputs by artifact type: which stages make them is the graph's declaration.
    store = si.state.store
    decoded = si.read(DecodedAudio)
    diarization = si.read(Diarization)
    transcript = si.read(Transcript)
    identification = si.read(Identification)
    provenance = {
        name: ProvenanceEntry(uri=r.uri, sha256=r.sha256, model=r.model, params=r.params)
        for name, r in si.inputs.items()
    }
    result = merge_stage.run(
        si.job.id, decoded.duration_s, transcript, diarization, identification, provenance
    )
    si.progress("merge", 1, 1)
    return store.put_json(f"{si.key_dir}/{ARTIFACT}", result)


def enroll(
    state: WorkerState, clip_keys: list[str], max_duration_s: float | None = None
) -> tuple[list[float], str]:
    """Decode each enrollment clip and average its embeddings into one voiceprint.

    Each clip is held to the per-clip limit, all of them together to the total limit, and
    both to the API key's duration limit when it is lower (an enrollment counts as a job,
    and a job's recording is held to it as a whole), so a clip costs the shared worker a
    bounded amount of memory and time."""
    settings = state.settings
    per_clip = settings.enroll_max_clip_s
    total = settings.enroll_max_total_s
    if max_duration_s is not None:
        per_clip = min(per_clip, max_duration_s)
        total = min(total, max_duration_s)
    left = total
    clips: list[np.ndarray] = []
    ffmpeg = decode_stage.find_ffmpeg()
    for n, key in enumerate(clip_keys, 1):
        if left <= 0:
            raise BadInput(
                f"the clips last more than {total:.0f} s together,"
                " the limit for one enrollment; send fewer or shorter clips"
            )
        with state.store.local_file(key) as src, tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "clip.wav"
            cap = min(per_clip, left)
            try:
                _, samples = decode_stage.decode_media(
                    src, wav, ffmpeg_exe=ffmpeg, max_duration_s=cap, what="the clip"
                )
            except StageFailed as exc:
                message = exc.message
                if cap < per_clip and "limit" in message:
                    message += f" (what is left of the {total:.0f} s all clips may last together)"
                raise BadInput(f"clip {n}: {message}") from exc
            left -= samples / 16000
            clips.append(decode_stage.load_wav(wav))
    encoder = state.models.encoder()
    # Speech only, one person (a tone, silence or two voices are refused, saying which).
    return voice.enroll_voiceprint(clips, encoder), encoder.model_id
