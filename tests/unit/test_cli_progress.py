"""The stage rows `scribe run` (and `scribe replay`) leave on the terminal: when the command
ends, every row reads as done, including the stages that run after the result."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from rich.console import Console

from cli.client import ScribeClient
from cli.run import follow_job
from core.events import JobEvent
from core.graph import DEFAULT_GRAPH


class GraphServer(ScribeClient):
    """What follow_job asks of a server whose graph is the default one, for a job that
    runs every stage the result waits for and then succeeds (the event stream ends there,
    as the real one does). Nothing is sent anywhere."""

    def __init__(self) -> None:
        super().__init__("http://scribe.invalid")

    def job(self, job_id: str) -> dict[str, Any]:
        return {"id": job_id, "stages": [{"stage": d.name} for d in DEFAULT_GRAPH]}

    def stages(self) -> list[dict[str, Any]]:
        return [{"name": d.name, "result": d.result} for d in DEFAULT_GRAPH]

    def events(self, job_id: str, after: str | None = None) -> Iterator[JobEvent]:
        for stage in DEFAULT_GRAPH.result_stages:
            yield JobEvent(type="stage.started", job_id=job_id, stage=stage)
            yield JobEvent(type="stage.progress", job_id=job_id, stage=stage, progress=0.5)
            yield JobEvent(type="stage.finished", job_id=job_id, stage=stage, progress=1.0)
        yield JobEvent(type="job.succeeded", job_id=job_id)


def rows(width: int = 100) -> dict[str, str]:
    """The rows left on the terminal when the command ends, by stage."""
    screen = io.StringIO()
    with GraphServer() as server:
        last = follow_job(server, "j1", console=Console(file=screen, width=width))
    assert last.type == "job.succeeded"
    lines = [line.rstrip() for line in screen.getvalue().splitlines() if line.strip()]
    return {line.split()[0]: line for line in lines}


def test_the_stages_of_the_result_end_at_100_percent() -> None:
    shown = rows()
    assert set(shown) == set(DEFAULT_GRAPH.names)
    for stage in DEFAULT_GRAPH.result_stages:
        assert "100%" in shown[stage], shown[stage]


def test_a_stage_after_the_result_reads_as_such_not_as_a_bar_left_at_zero() -> None:
    after = [d.name for d in DEFAULT_GRAPH if not d.result]
    assert after, "the default graph has a stage that runs after the result"
    shown = rows()
    for stage in after:
        assert "after the result" in shown[stage], shown[stage]
        assert "%" not in shown[stage] and "-:--:--" not in shown[stage], shown[stage]
        assert "━" not in shown[stage], shown[stage]
