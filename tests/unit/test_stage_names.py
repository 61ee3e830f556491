"""Stage names are spelled once, in the graph's declaration (core/graph.py). The gateway,
the CLI, the stores, search and the rest of core/ ask the graph instead: for the stage that
makes an artifact, `graph.producer(Model)`; for a list, iterate the graph. A stage renamed
or added there then needs no change anywhere else, and a deployment's own graph
(SCRIBE_STAGE_GRAPH) is obeyed everywhere.

What counts as spelling a name: a string constant that is exactly a stage name
(`current_artifact(job_id, "merge")`), or one that holds it in SQL quotes
(`"... WHERE stage = 'identify'"`). A word in prose ("the merged result", "once decode
finishes") is not a stage name.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from core.artifacts import Diarization, MeetingResult, SearchPassages
from core.graph import DEFAULT_GRAPH, StageDecl

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("gateway", "cli", "storage", "search", "core")
DECLARATION = REPO / "core" / "graph.py"
NAMES = frozenset(DEFAULT_GRAPH.names)
IN_SQL = re.compile("'(?:" + "|".join(re.escape(n) for n in sorted(NAMES)) + ")'")


def spelled(source: str) -> list[tuple[int, str]]:
    """(line, constant) of every string constant in `source` that spells a stage name, in
    line order. f-strings are walked too: their literal parts are constants."""
    return sorted(
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and (node.value in NAMES or IN_SQL.search(node.value))
    )


def modules() -> list[Path]:
    found = sorted(p for folder in FOLDERS for p in (REPO / folder).rglob("*.py"))
    return [p for p in found if p != DECLARATION]


def test_the_check_finds_names_and_only_names() -> None:
    source = (
        'a = records.current_artifact(job_id, "merge")\n'
        "b = \"SELECT 1 FROM job_stages WHERE stage = 'identify'\"\n"
        'c = f"{job}/diarize"\n'  # a path in an f-string: its constant part is "/diarize"
        'd = "the merged result, once decode finishes"\n'
        'e = "Decode"\n'
        'f = "decoder"\n'
    )
    assert [line for line, _ in spelled(source)] == [1, 2]


def test_no_stage_name_is_spelled_outside_the_declaration() -> None:
    assert len(modules()) > 50  # the folders were found
    found = [
        f"{path.relative_to(REPO)}:{line}: {value!r}"
        for path in modules()
        for line, value in spelled(path.read_text())
    ]
    assert not found, (
        "stage names spelled outside core/graph.py (ask the graph: graph.producer(Model)"
        " for the stage that makes an artifact, or take the name as a parameter):\n"
        + "\n".join(found)
    )


def test_the_graph_names_the_stage_that_makes_an_artifact() -> None:
    assert DEFAULT_GRAPH.producer(MeetingResult) is DEFAULT_GRAPH["merge"]
    assert DEFAULT_GRAPH.producer(Diarization).inputs == ("decode",)
    assert DEFAULT_GRAPH.find_producer(SearchPassages) is DEFAULT_GRAPH["embed"]

    class Unmade(BaseModel):
        pass

    assert DEFAULT_GRAPH.find_producer(Unmade) is None
    with pytest.raises(LookupError, match="no stage of the graph makes Unmade"):
        DEFAULT_GRAPH.producer(Unmade)
    twice = DEFAULT_GRAPH.with_stage(
        StageDecl("again", {"en": "Again", "fr": "Encore"}, ("merge",), MeetingResult, "x:y")
    )
    with pytest.raises(LookupError, match="several stages of the graph make MeetingResult"):
        twice.producer(MeetingResult)
