"""Both language model engines for real, with the small packaged SmolLM2 model: llama.cpp
embedded in this process, and an OpenAI-compatible server in a process of its own (llama.cpp's
server, started by `python -m llm.serve`), reached the way Ollama or vLLM would be. The
prose is the model's; what is asserted is the shape and the code-checked citations. Then a
server that is down and one that never answers: a clear LanguageModelUnavailable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.artifacts import MeetingResult, ResultSegment, ResultSpeaker
from core.errors import LanguageModelUnavailable
from core.settings import LLMSettings, Settings
from llm.base import LanguageModel
from llm.load import load_language_model
from llm.summary import SCHEMA, parse_reply, summarize
from tests.llm_server import free_port, llm_server, silent_server

pytestmark = pytest.mark.slow

SMALL = {"model": "smollm2-135m", "context_tokens": 2048, "threads": 1, "max_tokens": 96}


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with llm_server(tmp_path_factory.mktemp("llm-serve")) as url:
        yield url


def settings_for(data_dir: Path, **llm: object) -> Settings:
    return Settings(data_dir=data_dir, llm=LLMSettings(**{**SMALL, **llm}))  # type: ignore[arg-type]


@pytest.fixture(scope="module", params=["embedded", "openai"])
def model(
    request: pytest.FixtureRequest, server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LanguageModel]:
    data = tmp_path_factory.mktemp("llm")
    # llama.cpp's server: no prompt cache, as the embedded engine asks (repeatable replies).
    server = {"engine": "openai", "url": server_url, "extra": {"cache_prompt": False}}
    extra = server if request.param == "openai" else {}
    loaded = load_language_model(settings_for(data, **extra))
    yield loaded
    loaded.close()


def release_meeting() -> MeetingResult:
    said = [
        ("S1", "Good morning. We decided to ship version two of the app on Friday."),
        ("S2", "Then I will write the release notes before Thursday."),
        ("S1", "Thanks Bob. Carol, please check the tests."),
        ("S3", "Sure, I will check the tests tomorrow morning."),
    ]
    return MeetingResult(
        job_id="job",
        duration_s=40,
        language="en",
        speakers=[
            ResultSpeaker(id="S1", name="Alice", talk_time_s=10),
            ResultSpeaker(id="S2", name="Bob", talk_time_s=10),
            ResultSpeaker(id="S3", name="Carol", talk_time_s=10),
        ],
        segments=[
            ResultSegment(start=10.0 * i, end=10.0 * i + 9, speaker=sp, text=t, words=[])
            for i, (sp, t) in enumerate(said)
        ],
    )


def test_json_replies_follow_the_schema(model: LanguageModel) -> None:
    messages = [
        {"role": "system", "content": "Summarize the transcript as JSON."},
        {"role": "user", "content": "[0] 00:00 Alice: We ship on Friday."},
    ]
    reply = model.complete(messages, max_tokens=200, json_schema=SCHEMA)  # type: ignore[arg-type]
    # Constrained to the schema: JSON from the first character (a reply the token limit
    # cut is closed after its last complete item).
    assert reply.lstrip().startswith("{")
    doc = parse_reply(reply)
    assert "summary" in doc and set(doc) <= {"summary", "decisions", "action_items"}
    assert all(isinstance(p["segments"], list) for p in doc["summary"])


def test_a_reply_streams_in_pieces(model: LanguageModel) -> None:
    messages = [{"role": "user", "content": "Name three colours."}]
    pieces = list(model.stream(messages, max_tokens=24))  # type: ignore[arg-type]
    assert len(pieces) > 1 and "".join(pieces).strip()


def test_every_summary_item_cites_segments_of_the_meeting(model: LanguageModel) -> None:
    result = release_meeting()
    out = summarize(model, result, max_tokens=160)
    cited = [p.segments for p in [*out.summary, *out.decisions]]
    cited += [a.segments for a in out.action_items]
    assert out.model == model.model_id and out.chunks == 1
    assert out.summary  # SmolLM2 at temperature 0 writes a (poor) summary of this meeting
    for segments in cited:
        assert segments and set(segments) <= set(range(len(result.segments)))
    for action in out.action_items:
        assert action.owner_speaker in (None, "S1", "S2", "S3")
        if action.due is not None:  # kept only when a cited segment says it
            said = " ".join(result.segments[i].text.lower() for i in action.segments)
            assert action.due.lower() in said


def test_a_server_that_is_down_is_named_with_the_reason(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    model = load_language_model(settings_for(tmp_path, engine="openai", url=url))
    with pytest.raises(LanguageModelUnavailable, match="cannot be reached"):
        model.complete([{"role": "user", "content": "hi"}], max_tokens=4)
    with pytest.raises(LanguageModelUnavailable, match="cannot be reached"):
        list(model.stream([{"role": "user", "content": "hi"}], max_tokens=4))


def test_a_server_that_never_answers_times_out(tmp_path: Path) -> None:
    with silent_server() as url:
        model = load_language_model(settings_for(tmp_path, engine="openai", url=url, timeout_s=1))
        with pytest.raises(LanguageModelUnavailable, match="did not answer within 1 s"):
            model.complete([{"role": "user", "content": "hi"}], max_tokens=4)


def test_settings_that_name_no_model_say_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(LanguageModelUnavailable, match="SCRIBE_LLM__URL"):
        load_language_model(settings_for(tmp_path, engine="openai"))
    with pytest.raises(LanguageModelUnavailable, match="packaged: qwen2.5-coder-0.5b"):
        load_language_model(settings_for(tmp_path, model="gpt-17"))
    with pytest.raises(LanguageModelUnavailable, match="SCRIBE_LLM__ENGINE=off"):
        load_language_model(settings_for(tmp_path, engine="off"))
