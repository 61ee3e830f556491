"""One versioned pydantic model per stage output, plus the references that address them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ArtifactRef(BaseModel):
    """Where a stored artifact lives and what it must hash to."""

    model_config = ConfigDict(frozen=True)

    id: str
    job_id: str
    stage: str  # a stage of the graph (core/graph.py)
    version: int
    uri: str
    sha256: str


class ArtifactRecord(ArtifactRef):
    """An artifact with its provenance, as recorded in PostgreSQL."""

    key: str
    size_bytes: int
    params: dict[str, object] = Field(default_factory=dict)
    model: str | None = None
    inputs: list[str] = Field(default_factory=list)  # ids of the input artifacts
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker: str | None = None
    created_at: datetime | None = None


# ---------------------------------------------------------------- job parameters


# The languages Whisper models know (faster_whisper.tokenizer's list, which a unit test
# holds this to), so the gateway, which does not install the models, refuses others.
WHISPER_LANGUAGES = frozenset(
    (
        "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy",
        "da", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "haw",
        "he", "hi", "hr", "ht", "hu", "hy", "id", "is", "it", "ja", "jw", "ka", "kk", "km", "kn",
        "ko", "la", "lb", "ln", "lo", "lt", "lv", "mg", "mi", "mk", "ml", "mn", "mr", "ms", "mt",
        "my", "ne", "nl", "nn", "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si",
        "sk", "sl", "sn", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl",
        "tr", "tt", "uk", "ur", "uz", "vi", "yi", "yo", "zh", "yue",
    )
)  # fmt: skip


class JobParams(BaseModel):
    """What a user may set per job (upload form, CLI flags, replay overrides)."""

    model_config = ConfigDict(extra="forbid")

    language: str | None = Field(default=None, description="ISO code such as 'fr'; None: detect")
    num_speakers: int | None = Field(default=None, ge=1, le=64)
    min_speakers: int | None = Field(default=None, ge=1, le=64)
    max_speakers: int | None = Field(default=None, ge=1, le=64)
    identify_threshold: float | None = Field(default=None, ge=-1.0, le=1.0)


# ---------------------------------------------------------------- stage outputs


class ProbeInfo(BaseModel):
    format: str | None = None
    codec: str | None = None
    channels: int | None = None
    sample_rate: int | None = None
    duration_s: float | None = None
    bit_rate: int | None = None


class DecodedAudio(BaseModel):
    """`decode` output: metadata; the 16 kHz mono PCM WAV is stored beside it."""

    schema_version: Literal[1] = 1
    audio_uri: str
    audio_sha256: str
    sample_rate: int = 16000
    num_samples: int
    duration_s: float
    source: ProbeInfo


class Turn(BaseModel):
    start: float
    end: float
    speaker: str


class DiarizedSpeaker(BaseModel):
    label: str  # "S1", "S2", ... in order of first appearance
    talk_time_s: float
    embedding: list[float] | None = None  # cluster centroid, for `identify`
    # Seconds of clean speech (alone, away from turn edges) the embedding was made from;
    # None: a centroid of all the speaker's windows (older artifacts, other encoders).
    clean_speech_s: float | None = None


class Diarization(BaseModel):
    schema_version: Literal[1] = 1
    turns: list[Turn]  # may overlap
    exclusive_turns: list[Turn]  # one speaker at a time
    speakers: list[DiarizedSpeaker]
    embedding_model: str | None = None


class Word(BaseModel):
    start: float
    end: float
    word: str
    probability: float


class TranscriptSegment(BaseModel):
    start: float
    end: float
    text: str
    words: list[Word]
    avg_logprob: float | None = None
    no_speech_prob: float | None = None


class Transcript(BaseModel):
    schema_version: Literal[1] = 1
    language: str
    language_probability: float
    duration_s: float
    segments: list[TranscriptSegment]


class Suggestion(BaseModel):
    """An enrolled person a speaker sounds like, not sure enough to be named: shown as
    "Alice?" until a person confirms it (a rename)."""

    speaker_id: str
    name: str
    score: float  # cosine similarity with their voiceprint (as ResultSpeaker.confidence)
    snorm: float | None = None  # the s-norm score identify decided on, where it applies


class SpeakerMatch(BaseModel):
    label: str  # diarization label, "S1"
    speaker_id: str | None = None  # enrolled voiceprint id
    name: str | None = None
    score: float | None = None  # the best candidate's score (s-norm where a cohort is shipped)
    cosine: float | None = None  # the best candidate's cosine similarity
    suggestion: Suggestion | None = None  # unnamed, but close to this person
    why: str | None = None  # unnamed: which rule held the name back


class Identification(BaseModel):
    schema_version: Literal[1] = 1
    threshold: float  # on `score`
    embedding_model: str | None = None
    matches: list[SpeakerMatch]
    # The rules the names were decided by (stages/identify.py IdentifyRules); None in
    # artifacts made before them (plain cosine against `threshold`).
    rules: dict[str, float | str] | None = None


class ResultWord(BaseModel):
    start: float
    end: float
    word: str
    probability: float
    speaker: str


class ResultSegment(BaseModel):
    start: float
    end: float
    speaker: str
    text: str
    words: list[ResultWord]


class ResultSpeaker(BaseModel):
    id: str
    name: str | None = None
    speaker_id: str | None = None
    confidence: float | None = None
    talk_time_s: float
    suggestion: Suggestion | None = None  # "Alice?": unnamed, confirm with a rename


class ProvenanceEntry(BaseModel):
    uri: str
    sha256: str
    model: str | None = None
    params: dict[str, object] = Field(default_factory=dict)


class MeetingResult(BaseModel):
    schema_version: Literal[1] = 1
    job_id: str
    duration_s: float
    language: str | None
    speakers: list[ResultSpeaker]
    segments: list[ResultSegment]
    provenance: dict[str, ProvenanceEntry] = Field(default_factory=dict)


class Passage(BaseModel):
    """A bit of a meeting that search indexes: one speaker's turn, or a few of its sentences."""

    index: int  # its place among the job's passages
    segment_index: int  # the first result segment it covers
    segment_indices: list[int]
    start: float
    end: float
    speaker_id: str  # the diarization label, "S1"
    speaker_name: str | None = None  # as corrected, when the speaker has a name
    text: str


class SearchPassages(BaseModel):
    """`embed` output: the job's passages and their vectors (a float32 .npy stored beside
    it, one row per passage), made by embedding model `model` with `dim` dimensions."""

    schema_version: Literal[1] = 1
    job_id: str
    model: str
    dim: int
    vectors_uri: str
    vectors_sha256: str
    passages: list[Passage]


class LiveDraftLine(BaseModel):
    """A stretch of final words of one live speaker."""

    start: float
    end: float
    speaker: str | None = None
    name: str | None = None
    text: str


class LiveDraft(BaseModel):
    """The captions a live meeting showed while it ran (docs/live.md), kept beside the
    transcript the full graph makes of the whole recording once it ends."""

    schema_version: Literal[1] = 1
    duration_s: float
    model: str | None = None
    lines: list[LiveDraftLine] = Field(default_factory=list)


class SummaryPoint(BaseModel):
    """One sentence of a summary, or one decision, with the result segments it comes from
    (indexes in the result as corrected; every one checked to be among those the model
    was given)."""

    text: str
    segments: list[int]


class ActionItem(BaseModel):
    what: str
    # The owner as the transcript named them when the summary was made, and the speaker's
    # label ("S2"), by which the gateway shows the name a later rename gives.
    owner: str | None = None
    owner_speaker: str | None = None
    due: str | None = None  # kept only when the cited segments say it
    segments: list[int]


class RejectedClaim(BaseModel):
    """What the model wrote that the citation check did not let through: never shown as
    a fact, kept so a reader of the API can see what was left out and why."""

    kind: Literal["summary", "decision", "action_item", "owner", "due"]
    text: str
    segments: list[int] = Field(default_factory=list)
    reason: str


class Summary(BaseModel):
    """The summarize stage's output: a meeting's summary in its own language, its
    decisions and its action items, each citing its segments (llm/summary.py)."""

    schema_version: Literal[1] = 1
    job_id: str
    language: str | None
    model: str
    summary: list[SummaryPoint]
    decisions: list[SummaryPoint]
    action_items: list[ActionItem]
    rejected: list[RejectedClaim] = Field(default_factory=list)
    chunks: int = 1  # pieces the transcript was read in (map-reduce over a long meeting)
    segment_count: int = 0
