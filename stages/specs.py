"""The default graph's stage implementations (core.graph.DEFAULT_GRAPH names them): what
defines each stage's output (its params and model id, which go into the artifact key) and
its compute step (stages/compute.py)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import TYPE_CHECKING, Any

from core.jobs import Job
from stages import compute, embed, summarize
from stages.contract import StageSpec
from stages.diarize import SPEAKER_EMBEDDING
from stages.identify import resolve_threshold, shipped_rules

if TYPE_CHECKING:
    from stages.runtime import WorkerState


async def _describe_decode(state: WorkerState, job: Job) -> tuple[dict[str, Any], str | None]:
    return {"sample_rate": 16000, "channels": 1}, None


async def _describe_diarize(state: WorkerState, job: Job) -> tuple[dict[str, Any], str | None]:
    p = job.params
    params: dict[str, Any] = {
        "num_speakers": p.num_speakers,
        "min_speakers": p.min_speakers,
        "max_speakers": p.max_speakers,
    }
    if not state.models.fake():
        params["speaker_embedding"] = SPEAKER_EMBEDDING
    return params, await asyncio.to_thread(state.models.diarizer_id)


async def _describe_transcribe(state: WorkerState, job: Job) -> tuple[dict[str, Any], str | None]:
    m = state.settings.models
    params = {
        "language": job.params.language,
        "beam_size": m.asr_beam_size,
        "vad_filter": True,
        "compute_type": m.asr_compute_type,
    }
    if m.asr_batch_size:  # other words and timings: another artifact (absent: sequential)
        params["batch_size"] = m.asr_batch_size
        # The chunked decoder (stages/engines/whisper_chunked.py), not the batched
        # pipeline of faster-whisper an artifact with only a batch size came from.
        params["decoder"] = "chunked"
    return params, await asyncio.to_thread(state.models.transcriber_id)


async def _describe_identify(state: WorkerState, job: Job) -> tuple[dict[str, Any], str | None]:
    # Only the job owner's voiceprints: one tenant never names another's people.
    prints = await state.speakers.voiceprints(job.owner)
    # Enrolling or deleting a person changes the answer, so it changes the key.
    digest = hashlib.sha256(json.dumps(prints, sort_keys=True).encode()).hexdigest()[:16]
    model = await asyncio.to_thread(state.models.encoder_id)
    # job > SCRIBE_IDENTIFY_THRESHOLD > calibrated here > shipped for this encoder > default
    threshold, source = resolve_threshold(
        job.params.identify_threshold,
        state.settings.identify_threshold,
        await state.calibration.calibrated_threshold(model),
        model,
    )
    params = {
        "threshold": threshold,
        "threshold_source": source,
        # s-norm, margin and clean speech where a cohort is shipped for the encoder
        "rules": shipped_rules(threshold, model).as_params(),
        "voiceprints": digest,
        "voiceprint_list": prints,
    }
    return params, model


async def _describe_merge(state: WorkerState, job: Job) -> tuple[dict[str, Any], str | None]:
    return {}, None


async def _describe_embed(state: WorkerState, job: Job) -> tuple[dict[str, Any], str | None]:
    # The transcript as people read it: a rename or a text fix changes the key.
    corrections = await state.corrections.list_corrections(job.id)
    params = {
        "passage_max_chars": state.settings.search.passage_max_chars,
        "corrections": embed.corrections_digest(corrections),
        "correction_list": [c.model_dump(mode="json") for c in corrections],
    }
    return params, await asyncio.to_thread(state.models.text_embedder_id)


async def _describe_summarize(state: WorkerState, job: Job) -> tuple[dict[str, Any], str | None]:
    # As embed: the transcript as people read it, so a rename or a text fix changes the key.
    corrections = await state.corrections.list_corrections(job.id)
    llm = state.settings.llm
    params = {
        "max_tokens": llm.max_tokens,
        "context_tokens": llm.context_tokens,
        "temperature": llm.temperature,
        "seed": llm.seed,
        "corrections": embed.corrections_digest(corrections),
        "correction_list": [c.model_dump(mode="json") for c in corrections],
    }
    return params, await asyncio.to_thread(state.models.language_model_id)


DECODE = StageSpec(_describe_decode, compute.decode)
DIARIZE = StageSpec(_describe_diarize, compute.diarize)
TRANSCRIBE = StageSpec(_describe_transcribe, compute.transcribe)
IDENTIFY = StageSpec(_describe_identify, compute.identify, unrecorded=("voiceprint_list",))
MERGE = StageSpec(_describe_merge, compute.merge)
EMBED = StageSpec(_describe_embed, embed.embed, unrecorded=("correction_list",))
SUMMARIZE = StageSpec(_describe_summarize, summarize.summarize, unrecorded=("correction_list",))
