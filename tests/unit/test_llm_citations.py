"""The citation checks of summaries and answers (llm/summary.py, llm/answer.py), with a
named fake language model that replies what a test gives it: what the code lets through
does not depend on a model's prose."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from core.artifacts import MeetingResult, ResultSegment, ResultSpeaker
from llm.answer import check_answer
from llm.base import Message, estimate_tokens
from llm.lang import guess_language
from llm.summary import (
    PROMPT_OVERHEAD_TOKENS,
    _instructions,
    chunks_of,
    lines_of,
    parse_reply,
    summarize,
)


class FakeLanguageModel:
    """Unit tests only: replies the given texts in turn and records what it was sent."""

    model_id = "fake-llm"

    def __init__(self, replies: list[str], context_tokens: int = 4096) -> None:
        self.replies = list(replies)
        self.context_tokens = context_tokens
        self.sent: list[list[Message]] = []
        self.schemas: list[dict[str, Any] | None] = []

    def complete(
        self, messages: list[Message], *, max_tokens: int, json_schema: dict[str, Any] | None = None
    ) -> str:
        self.sent.append(messages)
        self.schemas.append(json_schema)
        return self.replies.pop(0)

    def stream(self, messages: list[Message], *, max_tokens: int) -> Iterator[str]:
        yield self.complete(messages, max_tokens=max_tokens)

    def close(self) -> None:
        pass


def meeting(n: int = 4, language: str = "en") -> MeetingResult:
    said = [
        ("S1", "We decided to ship version two on Friday."),
        ("S2", "I will write the release notes by Thursday."),
        ("S1", "Carol, can you check the tests?"),
        ("S3", "Yes, I will check them tomorrow."),
    ]
    segments = [
        ResultSegment(start=10.0 * i, end=10.0 * i + 8, speaker=sp, text=text, words=[])
        for i, (sp, text) in enumerate((said * (n // len(said) + 1))[:n])
    ]
    speakers = [
        ResultSpeaker(id="S1", name="Alice", talk_time_s=1),
        ResultSpeaker(id="S2", name="Bob", talk_time_s=1),
        ResultSpeaker(id="S3", talk_time_s=1),
    ]
    return MeetingResult(
        job_id="job", duration_s=40, language=language, speakers=speakers, segments=segments
    )


def test_items_citing_segments_not_given_are_rejected_and_never_facts() -> None:
    reply = {
        "summary": [
            {"text": "Version two ships on Friday.", "segments": [0]},
            {"text": "The budget was approved.", "segments": [17]},
            {"text": "Nobody cited this.", "segments": []},
        ],
        "decisions": [{"text": "Ship on Friday.", "segments": [0, 0, 99]}],
        "action_items": [],
    }
    out = summarize(FakeLanguageModel([json.dumps(reply)]), meeting(), max_tokens=200)
    assert [p.text for p in out.summary] == ["Version two ships on Friday."]
    assert out.decisions[0].segments == [0]  # the valid one, once; 99 is not a segment
    rejected = {r.text: r.reason for r in out.rejected}
    assert "17" in rejected["The budget was approved."]
    assert rejected["Nobody cited this."] == "cites no segment"


def test_owners_must_be_speakers_and_due_dates_must_be_said() -> None:
    reply = {
        "summary": [],
        "decisions": [],
        "action_items": [
            {"what": "Write the release notes", "owner": "bob", "due": "Thursday", "segments": [1]},
            {"what": "Check the tests", "owner": "S3", "due": "March 3rd", "segments": [3]},
            {"what": "Book a room", "owner": "Dave", "due": "", "segments": [2]},
        ],
    }
    out = summarize(FakeLanguageModel([json.dumps(reply)]), meeting(), max_tokens=200)
    notes, tests, room = out.action_items
    assert (notes.owner, notes.owner_speaker, notes.due) == ("Bob", "S2", "Thursday")
    # An invented date is not kept: no cited segment says "March 3rd".
    assert (tests.owner, tests.owner_speaker, tests.due) == ("S3", "S3", None)
    assert room.owner is None and room.owner_speaker is None
    kinds = {(r.kind, r.text) for r in out.rejected}
    assert ("due", "March 3rd") in kinds and ("owner", "Dave") in kinds


def test_the_prompt_numbers_lines_and_names_the_meeting_language() -> None:
    fake = FakeLanguageModel([json.dumps({"summary": [], "decisions": [], "action_items": []})])
    summarize(fake, meeting(language="fr"), max_tokens=100)
    system, user = fake.sent[0]
    assert "French" in system["content"]
    assert "[1] 00:10 Bob: I will write the release notes" in user["content"]
    assert "[3] 00:30 S3:" in user["content"]  # a speaker without a name: the label
    # The grammar lets the model cite only the lines it was given, at least one per item.
    schema = fake.schemas[0]
    assert schema is not None
    cited = schema["properties"]["action_items"]["items"]["properties"]["segments"]
    assert cited["items"]["enum"] == [0, 1, 2, 3] and cited["minItems"] == 1
    assert cited["maxItems"] == 4  # a small model otherwise cites every line
    assert schema["properties"]["summary"]["items"]["properties"]["segments"] == cited


def test_a_long_meeting_is_read_in_chunks_and_the_reduce_cites_only_what_chunks_cited() -> None:
    result = meeting(n=40)
    lines = lines_of(result)
    speakers = sorted({x.name for x in lines} | {x.speaker for x in lines})
    context, max_tokens = 1024, 64
    budget = context - max_tokens - PROMPT_OVERHEAD_TOKENS
    budget -= estimate_tokens(_instructions("en", speakers))
    chunks = chunks_of(lines, max(budget, 200))
    assert len(chunks) > 1
    assert [x.index for c in chunks for x in c] == list(range(40))  # every line, in order
    # Each chunk cites its own first line; the reduce cites one of those and one line that
    # no chunk cited.
    replies = [
        json.dumps(
            {
                "summary": [{"text": f"Point at {c[0].index}.", "segments": [c[0].index]}],
                "decisions": [{"text": "Ship on Friday.", "segments": [c[0].index]}],
                "action_items": [],
            }
        )
        for c in chunks
    ]
    merged = [
        {"text": "Merged.", "segments": [chunks[0][0].index]},
        {"text": "Made up.", "segments": [chunks[0][-1].index]},
    ]
    replies.append(json.dumps({"summary": merged}))
    fake = FakeLanguageModel(replies, context_tokens=context)
    out = summarize(fake, result, max_tokens=max_tokens)
    assert out.chunks == len(chunks) and len(fake.sent) == len(chunks) + 1
    assert [p.text for p in out.summary] == ["Merged."]
    assert any(r.text == "Made up." for r in out.rejected)
    assert [d.text for d in out.decisions] == ["Ship on Friday."]  # repeats merged


def test_a_reply_that_is_not_json_gives_an_empty_summary_not_an_error() -> None:
    out = summarize(FakeLanguageModel(["Sure! Here are the minutes..."]), meeting(), max_tokens=50)
    assert out.summary == [] and out.decisions == [] and out.action_items == []


def test_a_reply_cut_by_the_token_limit_keeps_its_complete_items() -> None:
    cut = '{"summary": [{"text": "One.", "segments": [0]}, {"text": "Tw'
    assert parse_reply(cut) == {"summary": [{"text": "One.", "segments": [0]}]}
    fenced = 'Here: ```json\n{"summary": [], "decisions": [{"text": "A \\"b\\"", "segments": [1]}'
    assert parse_reply(fenced)["decisions"] == [{"text": 'A "b"', "segments": [1]}]
    assert parse_reply("no json at all") == {}


def test_answers_keep_only_sentences_citing_given_sources() -> None:
    reply = "Version two ships on Friday [1]. The budget doubled [7]. Bob writes the notes. [2]"
    answer = check_answer(reply, 3, "en")
    assert not answer.declined
    assert [(s.text, s.sources) for s in answer.sentences] == [
        ("Version two ships on Friday.", [0]),
        ("Bob writes the notes.", [1]),
    ]
    assert answer.dropped == ["The budget doubled."]


def test_no_answer_or_nothing_cited_declines_and_cites_nothing() -> None:
    assert check_answer("NO_ANSWER", 3, "en").declined
    assert check_answer("[1] [", 3, "en").declined  # a citation of nothing said
    uncited = check_answer("It was probably on Friday.", 3, "fr")
    assert uncited.declined and uncited.sentences == []
    assert "ne le disent pas" in uncited.text


def test_the_question_language_is_guessed_between_french_and_english() -> None:
    assert guess_language("Qui doit écrire les notes de version ?") == "fr"
    assert guess_language("Quand est-ce que la version deux sort") == "fr"
    assert guess_language("Who writes the release notes?") == "en"
    assert guess_language("when does version two ship") == "en"
