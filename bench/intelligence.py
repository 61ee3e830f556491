"""Summaries and answers across meetings: how often they are right, how often their
citations are, how often an unsupported question is declined, and what a summary costs in
time and memory on 2 cores, per model, in one command.

The corpus is bench/search.py's (the dev audio transcribed once with the packaged Whisper,
cached under bench/results; speakers from the reference RTTMs). Figures:
- **ask** on `bench/intelligence_questions.tsv` (questions written over those transcripts,
  French and English, each with the recording that says the answer and words the right
  answer contains; and questions nothing in the corpus answers): *answer right* = not
  declined and an expected word is in the answer; *citations right* = among the answered,
  at least one citation is a moment of the right recording; *declined* = share of the
  unsupported questions declined. The hits come from the product's search (e5-small,
  Qdrant local mode); the answer from the product's code (llm/answer.py) and the model.
- **summary** of the 4-speaker (3.7 min) and the 12-minute (10 speakers) meeting and a
  French FLEURS clip: key points covered against a hand-written list per meeting
  (`KEY_POINTS`), items kept / left out by the citation check, chunks (map-reduce), wall
  and CPU seconds, and the peak RSS of the process that ran the model.
- **worker RSS**: a worker process with its speech models, then with the language model.

Each model runs in a process of its own, pinned to 2 cores (`--cores`), so its time and
memory are its own; SmolLM2 (`smollm2-135m`) runs first in the same command as the
baseline the others are read against.

    .venv/bin/python -m bench.intelligence                     # 0.5B default + SmolLM2
    .venv/bin/python -m bench.intelligence --models qwen2.5-coder-0.5b,qwen2.5-coder-1.5b
    .venv/bin/python -m bench.intelligence --quick             # 4-speaker summary, 6 questions
"""

from __future__ import annotations

import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._common import RESULTS, base_parser, fmt, md_table, write_json
from bench.search import OWNER, _job, _transcribe_all, meeting
from core.artifacts import MeetingResult
from core.settings import LLMSettings, SearchSettings, Settings

QUESTIONS = Path(__file__).with_name("intelligence_questions.tsv")
REPO = Path(__file__).resolve().parents[1]
SUMMARIZED = ["mix/meeting_4spk.wav", "mix/meeting_long_10spk.flac", "fleurs/fr/fleurs-fr-001.ogg"]
# What a reader of each meeting would expect its summary to mention, written from the
# transcripts: each point is covered when one of its words (| alternatives, folded) is in
# the summary's points or decisions.
KEY_POINTS: dict[str, list[str]] = {
    "mix/meeting_4spk.wav": [
        "poison",
        "temperature|post-mortem|post mortem|body",
        "doctor|medical|physician",
        "shoot|shot|gun",
        "mob|lynch",
        "life|patient",
    ],
    "mix/meeting_long_10spk.flac": [
        "poison",
        "doctor|medical|physician",
        "lobster|crayfish",
        "mob|lynch|shoot",
        "egypt|hebrew",
        "thornton|shop",
    ],
    "fleurs/fr/fleurs-fr-001.ogg": [
        "olympique|usoc|limpic",
        "athlete|atlette",
        "organisation|changement",
        "accreditation|creditation|revocation",
    ],
}


@dataclass(frozen=True)
class Question:
    lang: str
    question: str
    files: tuple[str, ...]
    expected: tuple[str, ...]
    kind: str


def load_questions(path: Path = QUESTIONS) -> list[Question]:
    with path.open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if not r["lang"].startswith("#")]
    return [
        Question(
            r["lang"],
            r["question"],
            tuple(x for x in r["file"].split("|") if x != "-"),
            tuple(x for x in r["expected"].split("|") if x != "-"),
            r["kind"],
        )
        for r in rows
    ]


def fold(text: str) -> str:
    from llm.summary import _fold

    return _fold(text)


def covered(words: str, text: str) -> bool:
    folded = f" {fold(text)} "
    return any(fold(w) in folded for w in words.split("|"))


# ---------------------------------------------------------------- the parent: corpus, hits


def hits_for(meetings: dict[str, MeetingResult], questions: list[Question], k: int) -> list[Any]:
    """Each question's search hits as the gateway would give them (e5-small + Qdrant)."""
    from search.embedder import load_text_embedder
    from search.index import SearchIndex
    from search.passages import cut_passages

    settings = SearchSettings()
    embedder = load_text_embedder(settings)
    out: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="scribe-bench-qdrant-") as tmp:
        index = SearchIndex.open(None, Path(tmp))
        for rel, m in meetings.items():
            ps = cut_passages(m, settings.passage_max_chars)
            if ps:
                vecs = embedder.embed_passages([p.text for p in ps])
                index.upsert_job(_job(rel), ps, vecs, model_id=embedder.model_id, artifact_id="a0")
        for q in questions:
            vector = embedder.embed_query(q.question)
            found = index.query(embedder.model_id, vector, owner=OWNER, limit=k)
            out.append(
                [
                    {
                        "job_id": h.job_id,
                        "file_name": h.file_name,
                        "segment_index": h.segment_index,
                        "start": h.start,
                        "end": h.end,
                        "speaker": h.speaker,
                        "text": h.text,
                    }
                    for h in found
                ]
            )
        index.close()
    return out


# ---------------------------------------------------------------- the child: one model


@dataclass(frozen=True)
class Hit:
    job_id: str
    file_name: str | None
    segment_index: int
    start: float
    end: float
    speaker: str
    text: str


def child(job_path: Path) -> None:
    """Runs in its own process: one model, the summaries then the questions."""
    from llm.answer import check_answer, prompt
    from llm.lang import guess_language
    from llm.load import load_language_model
    from llm.summary import summarize

    job = json.loads(job_path.read_text())
    llm = LLMSettings(model=job["model"], threads=job["threads"], max_tokens=job["max_tokens"])
    settings = Settings(data_dir=Path(job["data_dir"]), llm=llm)
    started = time.perf_counter()
    model = load_language_model(settings)
    load_s = time.perf_counter() - started
    summaries = {}
    for rel, doc in job["meetings"].items():
        result = MeetingResult.model_validate(doc)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        out = summarize(model, result, max_tokens=llm.max_tokens)
        summaries[rel] = {
            "summary": out.model_dump(mode="json"),
            "wall_s": time.perf_counter() - wall0,
            "cpu_s": time.process_time() - cpu0,
            "audio_s": result.duration_s,
        }
    answers = []
    for q, hits in zip(job["questions"], job["hits"], strict=True):
        sources = [Hit(**h) for h in hits]
        language = guess_language(q)
        wall0 = time.perf_counter()
        reply = "".join(model.stream(prompt(q, sources, language), max_tokens=job["ask_tokens"]))
        checked = check_answer(reply, len(sources), language)
        answers.append(
            {
                "question": q,
                "language": language,
                "reply": reply,
                "answer": checked.text,
                "declined": checked.declined,
                "cited_files": sorted(
                    {sources[i].job_id for s in checked.sentences for i in s.sources}
                ),
                "dropped": len(checked.dropped),
                "wall_s": time.perf_counter() - wall0,
            }
        )
    model.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {"model": model.model_id, "load_s": load_s, "peak_rss_bytes": peak,
             "summaries": summaries, "answers": answers}
        )
    )  # fmt: skip


def run_model(job: dict[str, Any], cores: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(job, f)
        path = Path(f.name)
    try:
        cmd = [sys.executable, "-m", "bench.intelligence", "--child", str(path)]
        if cores and Path("/usr/bin/taskset").exists():
            cmd = ["taskset", "-c", cores, *cmd]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{job['model']}: {done.stderr[-2000:]}")
        doc: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        doc["total_s"] = time.perf_counter() - t0
        return doc
    finally:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------- scoring


def score(
    doc: dict[str, Any], questions: list[Question], meetings: dict[str, Any]
) -> dict[str, Any]:
    ask = {"answerable": 0, "right": 0, "answered": 0, "cited_right": 0, "unsupported": 0,
           "declined": 0, "wall_s": 0.0}  # fmt: skip
    per_lang: dict[str, dict[str, int]] = {}
    for q, a in zip(questions, doc["answers"], strict=True):
        ask["wall_s"] += a["wall_s"]
        lang = per_lang.setdefault(q.lang, {"n": 0, "right": 0, "declined_ok": 0})
        lang["n"] += 1
        if q.kind == "unsupported":
            ask["unsupported"] += 1
            ask["declined"] += a["declined"]
            lang["declined_ok"] += a["declined"]
            continue
        ask["answerable"] += 1
        if a["declined"]:
            continue
        ask["answered"] += 1
        right = any(covered(w, a["answer"]) for w in q.expected)
        ask["right"] += right
        lang["right"] += right
        ask["cited_right"] += any(f in q.files for f in a["cited_files"])
    summaries = {}
    for rel, s in doc["summaries"].items():
        out = s["summary"]
        text = " ".join(p["text"] for p in [*out["summary"], *out["decisions"]])
        points = KEY_POINTS.get(rel, [])
        kept = len(out["summary"]) + len(out["decisions"]) + len(out["action_items"])
        segs = meetings[rel]["segments"]
        # A kept item's citations are "on topic" when a cited segment shares a word of 5+
        # letters with the item (the code checked they exist and were given; this asks
        # whether they are the right ones).
        on_topic = 0
        for item in [*out["summary"], *out["decisions"]]:
            words = {w for w in fold(item["text"]).split() if len(w) >= 5}
            said = {w for i in item["segments"] for w in fold(segs[i]["text"]).split()}
            on_topic += bool(words & said)
        summaries[rel] = {
            "key_points": len(points),
            "covered": sum(covered(p, text) for p in points),
            "kept": kept,
            "left_out": len(out["rejected"]),
            "citations_on_topic": on_topic,
            "points": len(out["summary"]) + len(out["decisions"]),
            "chunks": out["chunks"],
            "wall_s": s["wall_s"],
            "cpu_s": s["cpu_s"],
            "audio_s": s["audio_s"],
            "language": out["language"],
        }
    return {"ask": ask, "ask_by_language": per_lang, "summaries": summaries}


def worker_rss(data_dir: Path, model: str) -> dict[str, int]:
    probe = (
        "import json,sys\n"
        "from pathlib import Path\n"
        "from core.settings import LLMSettings, Settings\n"
        "from stages.engines.models import ModelManager\n"
        "def rss():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmRSS:'): return int(line.split()[1]) * 1024\n"
        "llm = LLMSettings(model=sys.argv[2])\n"
        "m = ModelManager(Settings(data_dir=Path(sys.argv[1]), llm=llm))\n"
        "m.transcriber(); m.diarizer(); m.encoder(); m.text_embedder()\n"
        "out = {'speech_and_search_models': rss()}\n"
        "lm = m.language_model()\n"
        "lm.complete([{'role': 'user', 'content': 'Say hi.'}], max_tokens=8)\n"
        "out['with_language_model'] = rss()\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(data_dir), model],
        capture_output=True, text=True, cwd=REPO, check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    rss: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return rss


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--child"]:
        child(Path(argv[1]))
        return 0
    p = base_parser("intelligence", __doc__.split("\n\n")[0] if __doc__ else "")
    p.add_argument("--models", default="qwen2.5-coder-0.5b", help="comma-separated")
    p.add_argument("--baseline", default="smollm2-135m", help="run first, same questions")
    p.add_argument("--threads", type=int, default=0, help="0: the default, half the cores")
    p.add_argument("--cores", default="0,1", help="taskset's CPU list for each model's run")
    p.add_argument("--max-tokens", type=int, default=512, help="per summary chunk")
    p.add_argument("--ask-tokens", type=int, default=100)
    p.add_argument(
        "--passages",
        type=int,
        default=LLMSettings().ask_passages,
        help="search hits an answer reads",
    )
    p.add_argument("--no-rss", action="store_true")
    args = p.parse_args(argv)
    cache = RESULTS / "search-cache"
    transcripts = _transcribe_all(cache)
    meetings = {rel: meeting(rel, t) for rel, t in transcripts.items()}
    questions = load_questions()
    summarized = SUMMARIZED
    if args.quick:
        summarized = SUMMARIZED[:1]
        questions = [q for q in questions if q.kind == "answer"][:4] + [
            q for q in questions if q.kind == "unsupported"
        ][:2]
    hits = hits_for(meetings, questions, args.passages)
    data_dir = cache / "data"
    docs = {rel: meetings[rel].model_dump(mode="json") for rel in summarized}
    models = [m for m in [args.baseline, *args.models.split(",")] if m]
    figures: dict[str, Any] = {"models": {}, "questions": len(questions)}
    for name in models:
        job = {
            "model": name, "threads": args.threads, "max_tokens": args.max_tokens,
            "ask_tokens": args.ask_tokens, "data_dir": str(data_dir), "meetings": docs,
            "questions": [q.question for q in questions], "hits": hits,
        }  # fmt: skip
        print(f"running {name} on cores {args.cores}", file=sys.stderr, flush=True)
        doc = run_model(job, args.cores)
        scored = score(doc, questions, docs)
        figures["models"][name] = {
            "model_id": doc["model"],
            "load_s": doc["load_s"],
            "peak_rss_bytes": doc["peak_rss_bytes"],
            **scored,
            "raw": doc,
        }
    if not args.no_rss:
        figures["worker_rss_bytes"] = worker_rss(data_dir, models[-1])
    write_json(args.out, {"figures": figures})
    report(figures)
    return 0


def report(figures: dict[str, Any]) -> None:
    rows = []
    for name, f in figures["models"].items():
        a = f["ask"]
        rows.append([
            name,
            f"{a['right']}/{a['answerable']}",
            f"{a['cited_right']}/{a['answered']}",
            f"{a['declined']}/{a['unsupported']}",
            fmt(a["wall_s"] / max(1, a["answerable"] + a["unsupported"]), 1),
            fmt(f["load_s"], 1),
            fmt(f["peak_rss_bytes"] / 1e6, 0),
        ])  # fmt: skip
    print(md_table(
        ["model", "answers right", "citations right (of answered)", "unsupported declined",
         "s per question", "load s", "peak RSS MB"], rows))  # fmt: skip
    rows = []
    for name, f in figures["models"].items():
        for rel, s in f["summaries"].items():
            rows.append([
                name, rel, f"{s['covered']}/{s['key_points']}",
                f"{s['citations_on_topic']}/{s['points']}", s["left_out"], s["chunks"],
                fmt(s["wall_s"], 1), fmt(s["cpu_s"], 1), fmt(s["audio_s"] / 60, 1),
            ])  # fmt: skip
    print()
    print(md_table(
        ["model", "meeting", "key points", "citations on topic", "left out", "chunks",
         "wall s", "CPU s", "audio min"], rows))  # fmt: skip
    rss = figures.get("worker_rss_bytes")
    if rss:
        a, b = rss["speech_and_search_models"] / 1e6, rss["with_language_model"] / 1e6
        print(f"\nworker RSS: speech + search models {a:.0f} MB; with the language model"
              f" {b:.0f} MB (+{b - a:.0f} MB)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
