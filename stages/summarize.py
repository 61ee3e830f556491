"""The summarize stage: a job's transcript, as people read it, summarized with its
decisions and action items, every item citing the segments it comes from (llm/summary.py
writes and checks them).

Like embed it runs after the result (core/graph.py: `result=False`), so a transcript
never waits for a language model, and a model server that is down or slow fails this
stage with a sentence saying so while the job stays succeeded. It reads the merged result
and applies the job's corrections, whose digest is in its key (as embed's): a rename or a
text fix makes a new summary, and the owners of action items follow the rename. It comes
after embed in the graph so that the one "the transcript changed" replay that corrections
send (gateway/services/search.py, `resend_embed`) runs both, under the same rules for a
stage that is busy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.artifacts import MeetingResult, Summary
from core.corrections import Correction, apply_corrections
from core.errors import LanguageModelUnavailable, StageFailed
from llm.summary import summarize as write_summary
from stages.compute import ARTIFACT
from storage.artifacts import StoredObject

if TYPE_CHECKING:
    from stages.contract import StageInput


def summarize(si: StageInput) -> StoredObject:
    store = si.state.store
    graph = si.state.graph
    merge = si.input_of(MeetingResult)
    result = store.get_json(store.key_of(merge.uri), MeetingResult)
    corrections = [Correction.model_validate(c) for c in si.params["correction_list"]]
    corrected = apply_corrections(result, corrections, graph, basis=merge.sha256)
    stage = graph.producer(Summary).name
    try:
        model = si.state.models.language_model()
        doc = write_summary(
            model, corrected, max_tokens=int(si.params["max_tokens"]), progress=si.progress
        )
    except LanguageModelUnavailable as exc:
        raise StageFailed(stage, f"no summary: {exc.message}") from None
    return store.put_json(f"{si.key_dir}/{ARTIFACT}", doc)
