"""Search across meetings: retrieval quality, embedding cost, query latency and memory, in
one command.

The corpus is the dev audio (`tests/data/audio`): the two constructed meetings, the AMI
excerpts, FLEURS in French and English, JFK, the language-switch file and two short clips.
Each file is transcribed once with the packaged Whisper (cached under bench/results, keyed by
the model id), its segments take their speaker from the reference RTTM where one exists, and
the result is cut into passages by `search.passages.cut_passages`, as the embed stage does.

Figures:
- **quality** on `bench/search_questions.tsv` (questions written over those transcripts, in
  French and English, some asked across languages): recall@5 and MRR@10, dense alone (the
  product's path: the embedder, then Qdrant) and fused with a keyword ranking (BM25 over the
  same passages, reciprocal rank fusion), per language of the question;
- **embed cost**: seconds to embed the passages of one hour of recorded speech;
- **latency** with 10,000 passages indexed (the corpus' passages repeated over 10 tenants'
  jobs): query embedding, the index query (tenant filter) and both together, p50/p99;
- **memory**: a worker process' RSS with its speech models loaded, then with the text
  embedder resident too.

    .venv/bin/python -m bench.search            # everything
    .venv/bin/python -m bench.search --quick    # 2,000 passages, fewer latency rounds
"""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import AUDIO, RESULTS, base_parser, fmt, machine, md_table, pct, write_json
from core.artifacts import MeetingResult, ResultSegment, ResultSpeaker, ResultWord, Transcript
from core.settings import SearchSettings, Settings
from search.embedder import TextEmbedder, load_text_embedder
from search.index import IndexedJob, SearchIndex
from search.passages import cut_passages

QUESTIONS = Path(__file__).with_name("search_questions.tsv")
CORPUS = [
    "mix/meeting_4spk.wav",
    "mix/meeting_long_10spk.flac",
    "jfk/jfk.flac",
    "misc/multilingual.mp3",
    "picovoice/cheetah/test_fr.wav",
    "picovoice/cheetah/test_en.wav",
    *[f"ami/trn0{i}.{'wav' if i == 1 else 'flac'}" for i in range(10)],
    *[f"fleurs/{lang}/fleurs-{lang}-00{i}.ogg" for lang in ("en", "fr") for i in range(5)],
]
OWNER = "bench"


# ---------------------------------------------------------------- corpus


def _transcribe_all(cache: Path) -> dict[str, Transcript]:
    """Every corpus file's transcript, from the cache or the packaged Whisper."""
    from stages.decode import find_ffmpeg, load_wav
    from stages.engines.models import ModelManager

    models = ModelManager(Settings(data_dir=cache / "data"))
    model_id = models.transcriber_id()
    folder = cache / re.sub(r"[^A-Za-z0-9._-]+", "_", model_id)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Transcript] = {}
    for rel in CORPUS:
        doc = folder / (rel.replace("/", "__") + ".json")
        if not doc.exists():
            print(f"transcribing {rel}", file=sys.stderr, flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                wav = Path(tmp) / "a.wav"
                subprocess.run(
                    [
                        find_ffmpeg(),
                        "-v",
                        "error",
                        "-i",
                        str(AUDIO / rel),
                        "-ac",
                        "1",
                        "-ar",
                        "16000",
                        str(wav),
                    ],
                    check=True,
                )
                audio = load_wav(wav)
            t = models.transcriber().transcribe(
                audio, language=None, beam_size=5, vad_filter=True, progress=lambda *a: None
            )
            doc.write_text(t.model_dump_json())
        out[rel] = Transcript.model_validate_json(doc.read_text())
    return out


def _rttm(rel: str) -> list[tuple[float, float, str]]:
    path = (AUDIO / rel).with_suffix(".rttm")
    if not path.exists():
        return []
    turns = []
    for line in path.read_text().splitlines():
        f = line.split()
        if len(f) >= 8 and f[0] == "SPEAKER":
            turns.append((float(f[3]), float(f[3]) + float(f[4]), f[7]))
    return turns


def _speaker(turns: list[tuple[float, float, str]], start: float, end: float) -> str:
    overlap: dict[str, float] = {}
    for a, b, who in turns:
        overlap[who] = overlap.get(who, 0.0) + max(0.0, min(b, end) - max(a, start))
    best = max(overlap, key=lambda k: overlap[k], default=None)
    return best if best is not None and overlap[best] > 0 else "S1"


def meeting(rel: str, t: Transcript) -> MeetingResult:
    """The transcript as a merged result, speakers from the reference turns."""
    turns = _rttm(rel)
    segments = []
    for s in t.segments:
        who = _speaker(turns, s.start, s.end)
        words = [
            ResultWord(
                start=w.start, end=w.end, word=w.word, probability=w.probability, speaker=who
            )
            for w in s.words
        ]
        segments.append(
            ResultSegment(start=s.start, end=s.end, speaker=who, text=s.text, words=words)
        )
    talk: dict[str, float] = {}
    for seg in segments:
        talk[seg.speaker] = talk.get(seg.speaker, 0.0) + seg.end - seg.start
    speakers = [ResultSpeaker(id=k, talk_time_s=v) for k, v in sorted(talk.items())]
    return MeetingResult(
        job_id=rel,
        duration_s=t.duration_s,
        language=t.language,
        speakers=speakers,
        segments=segments,
    )


# ---------------------------------------------------------------- quality


@dataclass(frozen=True)
class Question:
    lang: str
    query: str
    file: str
    phrase: str


def load_questions(path: Path = QUESTIONS) -> list[Question]:
    with path.open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if not r["lang"].startswith("#")]
    return [Question(r["lang"], r["query"], r["file"], r["phrase"]) for r in rows]


def norm(text: str) -> str:
    """Lower case, one apostrophe, words separated by one space: what phrases match on."""
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    return " ".join(re.sub(r"[^\w']+", " ", text).split())


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+", unicodedata.normalize("NFKC", text).lower())


class BM25:
    """Okapi BM25 over the passages' words: the keyword ranking the fused figure adds."""

    def __init__(self, docs: list[str], k1: float = 1.2, b: float = 0.75) -> None:
        self.docs = [Counter(_tokens(d)) for d in docs]
        self.lengths = [sum(c.values()) for c in self.docs]
        self.avg = sum(self.lengths) / max(len(self.docs), 1)
        df: Counter[str] = Counter()
        for c in self.docs:
            df.update(c.keys())
        n = len(self.docs)
        self.idf = {w: math.log(1 + (n - k + 0.5) / (k + 0.5)) for w, k in df.items()}
        self.k1, self.b = k1, b

    def rank(self, query: str, limit: int) -> list[int]:
        q = set(_tokens(query))
        scores = []
        for i, (c, length) in enumerate(zip(self.docs, self.lengths, strict=True)):
            s = 0.0
            for w in q & c.keys():
                tf = c[w]
                s += (
                    self.idf[w]
                    * tf
                    * (self.k1 + 1)
                    / (tf + self.k1 * (1 - self.b + self.b * length / self.avg))
                )
            if s > 0:
                scores.append((s, i))
        return [i for _, i in sorted(scores, reverse=True)[:limit]]


def rrf(*rankings: list[int], k: int = 60) -> list[int]:
    score: dict[int, float] = {}
    for ranking in rankings:
        for r, i in enumerate(ranking):
            score[i] = score.get(i, 0.0) + 1.0 / (k + r + 1)
    return sorted(score, key=lambda i: -score[i])


def _first_relevant(ranking: list[int], relevant: set[int], depth: int = 10) -> int | None:
    for r, i in enumerate(ranking[:depth]):
        if i in relevant:
            return r + 1
    return None


def quality(
    embedder: TextEmbedder,
    index: SearchIndex,
    passages: list[tuple[str, Any]],
    questions: list[Question],
) -> dict[str, Any]:
    texts = [norm(p.text) for _, p in passages]
    where = {(rel, round(p.start, 3), p.text): i for i, (rel, p) in enumerate(passages)}
    bm25 = BM25([p.text for _, p in passages])
    per: dict[str, dict[str, list[float]]] = {}
    misses: list[dict[str, Any]] = []
    for q in questions:
        relevant = {
            i
            for i, (rel, _) in enumerate(passages)
            if rel in q.file.split("|") and norm(q.phrase) in texts[i]
        }
        if not relevant:
            raise SystemExit(f"question {q.query!r}: no passage of {q.file} says {q.phrase!r}")
        hits = index.query(embedder.model_id, embedder.embed_query(q.query), owner=OWNER, limit=50)
        dense = [where[(h.job_id, round(h.start, 3), h.text)] for h in hits]
        fused = rrf(dense, bm25.rank(q.query, 50))
        for name, ranking in (("dense", dense), ("fused", fused)):
            rank = _first_relevant(ranking, relevant)
            for lang in (q.lang, "all"):
                m = per.setdefault(f"{lang}/{name}", {"recall5": [], "mrr10": []})
                m["recall5"].append(1.0 if rank is not None and rank <= 5 else 0.0)
                m["mrr10"].append(1.0 / rank if rank else 0.0)
            if name == "dense" and (rank is None or rank > 5):
                top = passages[dense[0]][1].text[:80] if dense else ""
                misses.append({"query": q.query, "rank": rank, "top": top})
    out = {
        key: {
            "n": len(v["recall5"]),
            "recall@5": sum(v["recall5"]) / len(v["recall5"]),
            "mrr@10": sum(v["mrr10"]) / len(v["mrr10"]),
        }
        for key, v in sorted(per.items())
    }
    return {"by": out, "dense_misses": misses}


# ---------------------------------------------------------------- cost and latency


def _job(rel: str, copy: int = 0) -> IndexedJob:
    """The corpus file as a job; copy k > 0 is another job of one of 10 other tenants."""
    return IndexedJob(
        job_id=rel if copy == 0 else f"{rel}#{copy}",
        owner=OWNER if copy == 0 else f"tenant{copy % 10}",
        file_name=Path(rel).name,
        created_at=datetime.now(UTC),
    )


def latency(
    embedder: TextEmbedder,
    corpus: dict[str, tuple[list[Any], np.ndarray]],
    questions: list[Question],
    target: int,
    rounds: int,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="scribe-bench-qdrant-") as tmp:
        index = SearchIndex.open(None, Path(tmp))
        total, copy = 0, 0
        t0 = time.perf_counter()
        while total < target:  # the bench tenant's own jobs first, then the others' copies
            for rel, (ps, vecs) in corpus.items():
                if total >= target:
                    break
                take = min(len(ps), target - total)
                index.upsert_job(
                    _job(rel, copy),
                    ps[:take],
                    vecs[:take],
                    model_id=embedder.model_id,
                    artifact_id=f"a{copy}",
                )
                total += take
            copy += 1
        upsert_s = time.perf_counter() - t0
        embed_ms, query_ms, both_ms = [], [], []
        for _ in range(rounds):
            for q in questions:
                a = time.perf_counter()
                v = embedder.embed_query(q.query)
                b = time.perf_counter()
                index.query(embedder.model_id, v, owner=OWNER, limit=10)
                c = time.perf_counter()
                embed_ms.append((b - a) * 1000)
                query_ms.append((c - b) * 1000)
                both_ms.append((c - a) * 1000)
        count = index.count(embedder.model_id)
        index.close()
    return {
        "passages": count,
        "upsert_per_s": count / upsert_s,
        "queries": len(both_ms),
        **{
            f"{name}_p50_ms": pct(v, 50)
            for name, v in (("embed", embed_ms), ("index", query_ms), ("total", both_ms))
        },
        **{
            f"{name}_p99_ms": pct(v, 99)
            for name, v in (("embed", embed_ms), ("index", query_ms), ("total", both_ms))
        },
    }


_RSS_PROBE = """
import json, sys
from core.settings import Settings, SearchSettings
from stages.engines.models import ModelManager
from search.embedder import load_text_embedder
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
out = {"python": rss()}
m = ModelManager(Settings(data_dir=sys.argv[1]))
m.transcriber(); m.diarizer(); m.encoder()
out["speech_models"] = rss()
e = load_text_embedder(SearchSettings())
e.embed_passages(["passage number %d about the budget of the pilot" % i for i in range(64)])
out["with_text_embedder"] = rss()
print(json.dumps(out))
"""


def worker_rss(cache: Path) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, str(cache / "data")],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    rss: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return rss


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = base_parser("search", __doc__.split("\n\n")[0] if __doc__ else "")
    p.add_argument("--passages", type=int, default=10_000, help="passages for the latency run")
    p.add_argument("--no-rss", action="store_true", help="skip the worker memory probe")
    args = p.parse_args(argv)
    target = 2_000 if args.quick else args.passages
    rounds = 2 if args.quick else 5
    cache = RESULTS / "search-cache"
    transcripts = _transcribe_all(cache)
    questions = load_questions()
    settings = SearchSettings()
    embedder = load_text_embedder(settings)

    corpus: dict[str, tuple[list[Any], np.ndarray]] = {}
    audio_s = sum(t.duration_s for t in transcripts.values())
    embed_s = 0.0
    for rel, t in transcripts.items():
        ps = cut_passages(meeting(rel, t), settings.passage_max_chars)
        a = time.perf_counter()
        vecs = embedder.embed_passages([x.text for x in ps]) if ps else np.zeros((0, embedder.dim))
        embed_s += time.perf_counter() - a
        corpus[rel] = (ps, vecs)
    n_passages = sum(len(ps) for ps, _ in corpus.values())

    with tempfile.TemporaryDirectory(prefix="scribe-bench-qdrant-") as tmp:
        index = SearchIndex.open(None, Path(tmp))
        flat: list[tuple[str, Any]] = []
        for rel, (ps, vecs) in corpus.items():
            index.upsert_job(_job(rel), ps, vecs, model_id=embedder.model_id, artifact_id="a0")
            flat.extend((rel, x) for x in ps)
        q = quality(embedder, index, flat, questions)
        index.close()

    lat = latency(embedder, corpus, questions, target, rounds)
    rss = {} if args.no_rss else worker_rss(cache)

    figures: dict[str, Any] = {
        "model": embedder.model_id,
        "corpus": {"files": len(corpus), "audio_s": audio_s, "passages": n_passages},
        "quality": q,
        "embed": {
            "seconds": embed_s,
            "per_hour_of_audio_s": embed_s * 3600 / audio_s,
            "passages_per_s": n_passages / embed_s,
        },
        "latency": lat,
        "rss_bytes": rss,
    }
    write_json(args.out, {"machine": machine(), "figures": figures})

    rows = [[key, v["n"], fmt(v["recall@5"], 3), fmt(v["mrr@10"], 3)] for key, v in q["by"].items()]
    print(
        f"model {embedder.model_id}; {len(corpus)} files, {audio_s / 60:.1f} min of audio,"
        f" {n_passages} passages, {len(questions)} questions"
    )
    print(md_table(["questions/ranking", "n", "recall@5", "MRR@10"], rows))
    print(
        f"\nembed: {embed_s:.2f} s for {n_passages} passages = "
        f"{figures['embed']['per_hour_of_audio_s']:.1f} s per hour of audio"
    )
    print(
        md_table(
            [
                "with passages",
                "upserts/s",
                "embed p50/p99 ms",
                "index p50/p99 ms",
                "total p50/p99 ms",
            ],
            [
                [
                    lat["passages"],
                    fmt(lat["upsert_per_s"], 0),
                    f"{fmt(lat['embed_p50_ms'], 1)} / {fmt(lat['embed_p99_ms'], 1)}",
                    f"{fmt(lat['index_p50_ms'], 1)} / {fmt(lat['index_p99_ms'], 1)}",
                    f"{fmt(lat['total_p50_ms'], 1)} / {fmt(lat['total_p99_ms'], 1)}",
                ]
            ],
        )
    )
    if rss:
        mb = {k: v / 1e6 for k, v in rss.items()}
        print(
            f"\nworker RSS: speech models {mb['speech_models']:.0f} MB, with the text"
            f" embedder {mb['with_text_embedder']:.0f} MB"
            f" (+{mb['with_text_embedder'] - mb['speech_models']:.0f} MB)"
        )
    if q["dense_misses"]:
        print("\ndense misses (rank > 5):")
        for m in q["dense_misses"]:
            print(f"  {m['query']!r}: rank {m['rank']}; top: {m['top']!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
