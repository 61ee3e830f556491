"""The whole pipeline over HTTP: upload → SSE progress → job, result, artifacts.

Everything is real: the gateway under uvicorn, a worker process with Whisper, pyannote and
CAM++, PostgreSQL, Redis, ffmpeg and the artifact store on disk (see conftest.py).
"""

from __future__ import annotations

import hashlib
import json
import re
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from core.graph import DEFAULT_GRAPH, StageGraph
from core.settings import Settings

if TYPE_CHECKING:  # the helpers arrive as fixtures; conftest is not imported at run time
    from tests.integration.conftest import ScribeAPI, SSEvent

pytestmark = pytest.mark.slow

SAMPLE_RATE = 16000


# ---------------------------------------------------------------- helpers


def normalise(text: str) -> list[str]:
    """Lowercase words without punctuation: "Oh, hello." -> ["oh", "hello"]."""
    return re.sub(r"[^\w\s]", "", text.lower()).split()


def word_error_rate(reference: list[str], hypothesis: list[str]) -> float:
    """Word-level Levenshtein distance over the reference length."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp in enumerate(hypothesis, 1):
            current[j] = min(
                previous[j] + 1,  # deletion
                current[j - 1] + 1,  # insertion
                previous[j - 1] + (ref != hyp),  # substitution
            )
        previous = current
    return previous[-1] / max(1, len(reference))


def result_text(result: dict[str, Any]) -> str:
    return " ".join(seg["text"] for seg in result["segments"])


def read_stm(path: Path) -> str:
    """The transcript column of an STM file (`file channel speaker start end text`)."""
    return " ".join(line.split(maxsplit=5)[5] for line in path.read_text().splitlines() if line)


def read_rttm(path: Path) -> list[tuple[float, float, str]]:
    turns = []
    for line in path.read_text().splitlines():
        f = line.split()
        if f and f[0] == "SPEAKER":
            start, duration = float(f[3]), float(f[4])
            turns.append((start, start + duration, f[7]))
    return turns


def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def map_speakers(
    result: dict[str, Any], reference: list[tuple[float, float, str]]
) -> dict[str, str]:
    """Each result speaker -> the reference speaker its segments overlap most in time."""
    totals: dict[str, dict[str, float]] = {}
    for seg in result["segments"]:
        for r0, r1, ref in reference:
            o = overlap(seg["start"], seg["end"], r0, r1)
            if o > 0:
                per = totals.setdefault(seg["speaker"], {})
                per[ref] = per.get(ref, 0.0) + o
    return {hyp: max(per, key=lambda r: per[r]) for hyp, per in totals.items()}


def assert_stage_sequence(events: list[SSEvent], job_id: str, graph: StageGraph) -> None:
    """job.queued, then per stage of the result started → progress* → finished, each
    stage starting only after every stage it reads has finished (with one worker, stages
    that do not depend on each other run one after the other, in either order), then
    succeeded; progress in [0, 1] and non-decreasing within a stage; every event has an
    increasing id."""
    seen = [f"{e.type}:{e.data.get('stage')}" for e in events]
    assert events and events[0].type == "job.queued", seen
    assert events[-1].type == "job.succeeded", seen
    started: dict[str, int] = {}
    finished: dict[str, int] = {}
    fractions: dict[str, list[float]] = {}
    for pos, e in enumerate(events[1:-1], 1):
        stage = str(e.data.get("stage"))
        if e.type == "stage.started":
            assert stage not in started, f"{stage} started twice: {seen}"
            started[stage] = pos
        elif e.type == "stage.progress":
            assert stage in started and stage not in finished, seen
            fractions.setdefault(stage, []).append(e.data["progress"])
        elif e.type == "stage.finished":
            assert stage in started and stage not in finished, seen
            assert 0.0 <= e.data["progress"] <= 1.0
            finished[stage] = pos
        else:
            raise AssertionError(f"unexpected event {e.type} at #{pos}: {seen}")
    # The stream is followed to job.succeeded: the stages of the result, each once (those
    # after the result, search indexing, run on after it).
    assert list(finished) and set(started) == set(finished) == set(graph.result_stages), seen
    for decl in graph:
        if not decl.result:
            continue
        for name in decl.inputs:
            assert finished[name] < started[decl.name], f"{decl.name} before {name}: {seen}"
    for stage, values in fractions.items():
        assert all(0.0 <= f <= 1.0 for f in values), (stage, values)
        assert values == sorted(values), f"{stage} progress went backwards: {values}"

    ids = [e.id for e in events]
    assert all(ids), f"an event has no id: {ids}"
    keys = [tuple(int(p) for p in str(i).split("-")) for i in ids]
    assert keys == sorted(keys) and len(set(keys)) == len(keys), ids
    for e in events:
        assert e.data["id"] == e.id and e.data["job_id"] == job_id


def assert_succeeded_job(api: ScribeAPI, job: dict[str, Any]) -> None:
    assert job["status"] == "succeeded", job
    assert job["error"] is None
    assert job["started_at"] and job["finished_at"]
    states = api.stage_states(job)
    assert list(states) == list(DEFAULT_GRAPH.names)
    for name, st in states.items():
        assert st["status"] == "succeeded", (name, st)
        assert st["artifact_id"], name
        assert st["started_at"] and st["finished_at"], name
        assert st["elapsed_s"] is not None and st["elapsed_s"] >= 0, name
        assert st["worker"], name


def file_sha256(uri: str) -> str:
    assert uri.startswith("file://"), uri
    return hashlib.sha256(Path(uri.removeprefix("file://")).read_bytes()).hexdigest()


def write_wav(path: Path, audio: np.ndarray) -> None:
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())


# ---------------------------------------------------------------- 1. sample.wav, end to end


def test_sample_end_to_end(api: ScribeAPI, pyannote_sample: Path) -> None:
    job_id, events = api.run(pyannote_sample / "sample.wav")

    assert_stage_sequence(events, job_id, DEFAULT_GRAPH)
    assert events[0].data["stage"] == "decode"
    progress = [e.data["stage"] for e in events if e.type == "stage.progress"]
    assert progress.count("diarize") >= 2 and progress.count("transcribe") >= 1, progress
    assert all(e.data["reused"] is False for e in events if e.type == "stage.finished")

    # A client that reconnects with Last-Event-ID gets exactly what it missed.
    resumed = api.http.get(
        f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": events[3].id or ""}
    )
    assert resumed.status_code == 200
    resumed_ids = [
        line.removeprefix("id: ") for line in resumed.text.splitlines() if line.startswith("id: ")
    ]
    missed = [e.id for e in events[4:]]
    assert resumed_ids[: len(missed)] == missed
    # Then the events of the stages after the result (search indexing), which follow
    # job.succeeded in the job's history.
    later = [
        json.loads(line[5:]) for line in resumed.text.splitlines() if line.startswith("data:")
    ][len(missed) :]
    after_result = {d.name for d in DEFAULT_GRAPH if not d.result}
    assert later and all(e["stage"] in after_result for e in later), later

    job = api.job(job_id)
    assert_succeeded_job(api, job)
    assert job["filename"] == "sample.wav"
    assert job["params"].get("num_speakers") is None
    assert job["duration_s"] == pytest.approx(30.0, abs=0.1)
    assert job["language"] == "en"

    # ------------------------------------------------ the JSON result
    result = api.result(job_id)
    assert result["schema_version"] == 1
    assert result["job_id"] == job_id
    assert result["language"] == "en"
    assert result["duration_s"] == pytest.approx(30.0, abs=0.1)
    speaker_ids = [s["id"] for s in result["speakers"]]
    assert len(speaker_ids) == 2, result["speakers"]
    assert all(s["talk_time_s"] > 0 for s in result["speakers"])
    assert all(s["name"] is None for s in result["speakers"])  # nobody is enrolled

    words = api.words_of(result)
    assert len(words) > 50
    for w in words:
        assert 0.0 <= w["start"] <= w["end"] <= result["duration_s"] + 0.5, w
        assert w["speaker"] in speaker_ids, w
    starts = [w["start"] for w in words]
    assert starts == sorted(starts), "word start times go backwards"
    for seg in result["segments"]:
        assert seg["speaker"] in speaker_ids
        assert {w["speaker"] for w in seg["words"]} <= {seg["speaker"]}
        assert seg["start"] <= seg["end"]

    reference = normalise(read_stm(pyannote_sample / "sample.stm"))
    hypothesis = normalise(" ".join(w["word"] for w in words))
    wer = word_error_rate(reference, hypothesis)
    assert wer < 0.30, f"WER {wer:.1%}: {' '.join(hypothesis)}"

    # Who said it: map our speakers onto the reference ones, then score word by word.
    turns = read_rttm(pyannote_sample / "sample.rttm")
    mapping = map_speakers(result, turns)
    assert sorted(set(mapping.values())) == sorted({t[2] for t in turns}), mapping
    scored = right = 0
    for w in words:
        mid = (w["start"] + w["end"]) / 2
        covering = {ref for r0, r1, ref in turns if r0 <= mid <= r1}
        if covering:
            scored += 1
            right += mapping.get(w["speaker"]) in covering
    assert scored >= 0.7 * len(words)
    assert right / scored >= 0.85, f"{right}/{scored} words attributed to the right speaker"

    # ------------------------------------------------ SRT, WebVTT, plain text
    segments = result["segments"]
    srt = api.result_text(job_id, "srt")
    assert srt.headers["content-type"].startswith("application/x-subrip")
    cues = [c for c in srt.text.replace("\r\n", "\n").strip().split("\n\n") if c.strip()]
    assert len(cues) == len(segments)
    stamp = r"\d{2}:\d{2}:\d{2},\d{3} --> \d{2}:\d{2}:\d{2},\d{3}"
    for n, cue in enumerate(cues, 1):
        lines = cue.split("\n")
        assert lines[0] == str(n), cue
        assert re.fullmatch(stamp, lines[1]), cue
        assert re.match(r"Speaker \d+: \S", lines[2]), cue

    vtt = api.result_text(job_id, "vtt")
    assert vtt.headers["content-type"].startswith("text/vtt")
    assert vtt.text.startswith("WEBVTT")
    vtt_stamps = re.findall(
        r"^\d{2}:\d{2}:\d{2}\.\d{3} --> \d{2}:\d{2}:\d{2}\.\d{3}$", vtt.text, flags=re.M
    )
    assert len(vtt_stamps) == len(segments)
    assert "<v Speaker " in vtt.text

    txt = api.result_text(job_id, "txt")
    assert txt.headers["content-type"].startswith("text/plain")
    lines = txt.text.strip().split("\n")
    assert len(lines) == len(segments)
    assert all(re.match(r"\[\d{2}:\d{2}:\d{2}\] Speaker \d+: \S", ln) for ln in lines), lines
    assert {ln.split("]")[1].split(":")[0].strip() for ln in lines} == {"Speaker 1", "Speaker 2"}

    # ------------------------------------------------ artifacts and their provenance
    artifacts = api.artifacts(job_id)
    assert len(artifacts) >= 5
    by_stage = {a["stage"]: a for a in artifacts}
    assert set(by_stage) == set(DEFAULT_GRAPH.names)
    states = api.stage_states(job)
    for a in artifacts:
        stage = a["stage"]
        assert a["job_id"] == job_id and a["version"] == 1
        assert a["uri"].startswith("file://") and re.fullmatch(r"[0-9a-f]{64}", a["sha256"])
        assert isinstance(a["params"], dict)
        assert a["worker"] and a["started_at"] and a["finished_at"]
        assert a["started_at"] <= a["finished_at"]
        if stage in ("diarize", "transcribe", "identify"):
            assert a["model"], f"{stage} artifact records no model"
        assert a["inputs"] == [by_stage[s]["id"] for s in DEFAULT_GRAPH[stage].inputs], stage
        assert states[stage]["artifact_id"] == a["id"]
        # What is on disk is what was recorded.
        assert file_sha256(a["uri"]) == a["sha256"], f"{stage}: stored file does not match"
        assert Path(a["uri"].removeprefix("file://")).stat().st_size == a["size_bytes"]
    assert by_stage["transcribe"]["params"]["language"] is None
    assert by_stage["diarize"]["params"]["num_speakers"] is None
    # The decoded audio beside decode's artifact.json hashes as recorded, too.
    doc_path = Path(by_stage["decode"]["uri"].removeprefix("file://"))
    doc = json.loads(doc_path.read_text())
    assert doc["sample_rate"] == 16000 and doc["num_samples"] == pytest.approx(480000, abs=160)
    assert file_sha256(doc["audio_uri"]) == doc["audio_sha256"]
    # The result names its provenance: the artifacts it was merged from.
    for stage in ("decode", "diarize", "transcribe", "identify"):
        assert result["provenance"][stage]["sha256"] == by_stage[stage]["sha256"]


# ---------------------------------------------------------------- 2. models stay loaded


def test_second_job_does_not_load_models_again(
    api: ScribeAPI, audio_dir: Path, pyannote_sample: Path
) -> None:
    if api.first_job is None:  # run alone: a first job pays for loading the models
        api.run(pyannote_sample / "sample.wav")
    first = api.first_job
    assert first is not None

    job_id, events = api.run(audio_dir / "jfk" / "jfk.flac")
    assert events[-1].type == "job.succeeded", [e.data for e in events[-3:]]

    job = api.job(job_id)
    assert_succeeded_job(api, job)
    text = " ".join(normalise(result_text(api.result(job_id))))
    assert "ask not what your country can do for you" in text, text

    second, before = api.stage_states(job), api.stage_states(first)

    # Same worker process, so the models it loaded for the first job are still resident...
    # (a stage's worker is "<host>:<pid>/<attempt>": the attempt differs, the process not)
    def processes(states: dict[str, dict[str, Any]]) -> set[str]:
        return {s["worker"].split("/")[0] for s in states.values()}

    assert processes(second) == processes(before)
    # ...and this job does not pay for loading them again.
    assert second["diarize"]["elapsed_s"] < before["diarize"]["elapsed_s"], (second, before)
    work = second["diarize"]["elapsed_s"] + second["transcribe"]["elapsed_s"]
    work_first = before["diarize"]["elapsed_s"] + before["transcribe"]["elapsed_s"]
    assert work < work_first, (work, work_first)


# ---------------------------------------------------------------- 3. French


def test_french_detected_and_forced(api: ScribeAPI, audio_dir: Path) -> None:
    clip = audio_dir / "fleurs" / "fr" / "fleurs-fr-001.ogg"
    reference = normalise((clip.with_suffix(".txt")).read_text())

    detected_id, events = api.run(clip)
    assert events[-1].type == "job.succeeded", [e.data for e in events[-3:]]
    detected = api.result(detected_id)
    assert detected["language"] == "fr"
    assert api.job(detected_id)["language"] == "fr"
    wer = word_error_rate(reference, normalise(result_text(detected)))
    assert wer < 0.35, f"French WER {wer:.1%}: {result_text(detected)}"

    forced_id, events = api.run(clip, language="fr")
    assert events[-1].type == "job.succeeded", [e.data for e in events[-3:]]
    forced = api.result(forced_id)
    assert forced["language"] == "fr"
    assert api.job(forced_id)["params"]["language"] == "fr"
    transcribe = next(a for a in api.artifacts(forced_id) if a["stage"] == "transcribe")
    assert transcribe["params"]["language"] == "fr"
    assert api.words_of(forced)


# ---------------------------------------------------------------- 5. enrolled speakers


ENROLLED = {"3331": "Speaker 3331", "2033": "Speaker 2033"}
NOT_ENROLLED = "1688"
# Utterances not used for enrollment (mix/enrollment.tsv lists the enrollment clips).
MEETING = [
    "3331/3331-159605-0002",
    "2033/2033-164914-0002",
    "1688/1688-142285-0003",
    "3331/3331-159605-0005",
    "2033/2033-164914-0004",
    "1688/1688-142285-0004",
    "3331/3331-159605-0001",
    "2033/2033-164914-0007",
]


def enrollment_clips(audio_dir: Path) -> dict[str, list[Path]]:
    clips: dict[str, list[Path]] = {}
    for line in (audio_dir / "mix" / "enrollment.tsv").read_text().splitlines()[1:]:
        speaker, utterance, _ = line.split("\t")
        clips.setdefault(speaker, []).append(audio_dir / utterance)
    return clips


def build_meeting(audio_dir: Path, out: Path) -> list[tuple[float, float, str]]:
    """Concatenate the utterances with 0.5 s silences; return the reference turns."""
    from faster_whisper import decode_audio

    gap = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
    parts: list[np.ndarray] = [gap]
    turns = []
    t = len(gap) / SAMPLE_RATE
    for name in MEETING:
        audio = decode_audio(str(audio_dir / "librispeech" / f"{name}.flac"), SAMPLE_RATE)
        parts += [audio, gap]
        turns.append((t, t + len(audio) / SAMPLE_RATE, name.split("/")[0]))
        t += (len(audio) + len(gap)) / SAMPLE_RATE
    write_wav(out, np.concatenate(parts))
    return turns


def test_enrolled_speakers_are_named(
    api: ScribeAPI, audio_dir: Path, tmp_path: Path, system_settings: Settings
) -> None:
    clips = enrollment_clips(audio_dir)
    ids: dict[str, str] = {}
    for speaker, name in ENROLLED.items():
        files = [("files", (p.name, p.read_bytes(), "audio/flac")) for p in clips[speaker]]
        assert len(files) == 2
        resp = api.http.post("/v1/speakers", data={"name": name}, files=files, timeout=120)
        assert resp.status_code == 201, resp.text
        body = resp.json()
        assert body["name"] == name and body["num_clips"] == 2 and body["model"]
        assert resp.headers["location"] == f"/v1/speakers/{body['id']}"
        ids[speaker] = body["id"]
    try:
        listed = api.http.get("/v1/speakers").json()
        assert {s["id"]: s["name"] for s in listed} == {ids[k]: ENROLLED[k] for k in ids}

        meeting = tmp_path / "meeting.wav"
        turns = build_meeting(audio_dir, meeting)
        assert turns[-1][1] < 60
        job_id, events = api.run(meeting)
        assert events[-1].type == "job.succeeded", [e.data for e in events[-3:]]
        result = api.result(job_id)

        threshold = system_settings.identify_threshold or 0.0  # None: calibrated/default
        named = {s["name"]: s for s in result["speakers"] if s["name"] is not None}
        assert set(named) == set(ENROLLED.values()), result["speakers"]
        for speaker, name in ENROLLED.items():
            assert named[name]["speaker_id"] == ids[speaker]
            assert named[name]["confidence"] >= threshold, named[name]
        unnamed = [s for s in result["speakers"] if s["name"] is None]
        assert unnamed, f"the non-enrolled speaker {NOT_ENROLLED} got a name: {result['speakers']}"
        assert all(s["speaker_id"] is None for s in unnamed)

        # The names sit on the right voices: where each utterance is, its label speaks.
        label_of = {s["id"]: s.get("name") for s in result["speakers"]}
        expected = {**ENROLLED, NOT_ENROLLED: None}
        scored = right = 0
        for w in api.words_of(result):
            mid = (w["start"] + w["end"]) / 2
            for t0, t1, who in turns:
                if t0 <= mid <= t1:
                    scored += 1
                    right += label_of[w["speaker"]] == expected[who]
        assert scored and right / scored >= 0.85, f"{right}/{scored} words under the right name"
        txt = api.result_text(job_id, "txt").text
        assert "Speaker 3331:" in txt and "Speaker 2033:" in txt

        # Forgetting a person.
        assert api.http.delete(f"/v1/speakers/{ids['2033']}").status_code == 204
        remaining = api.http.get("/v1/speakers").json()
        assert [s["id"] for s in remaining] == [ids["3331"]]
        assert api.http.delete(f"/v1/speakers/{ids['2033']}").status_code == 404
    finally:  # leave nobody enrolled for the other tests (identify keys hash the voiceprints)
        for speaker_id in ids.values():
            api.http.delete(f"/v1/speakers/{speaker_id}")
    assert api.http.get("/v1/speakers").json() == []


# ---------------------------------------------------------------- 7. delete


def test_delete_finished_job(api: ScribeAPI, audio_dir: Path, system_settings: Settings) -> None:
    job_id, events = api.run(audio_dir / "misc" / "english.wav")
    assert events[-1].type == "job.succeeded", [e.data for e in events[-3:]]
    folder = Path(system_settings.storage_root) / "jobs" / job_id
    assert (folder / "upload").is_dir() and (folder / "merge").is_dir()
    assert all(file_sha256(a["uri"]) == a["sha256"] for a in api.artifacts(job_id))

    assert api.http.delete(f"/v1/jobs/{job_id}").status_code == 204
    gone = api.http.get(f"/v1/jobs/{job_id}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    assert not folder.exists()
    for path in ("result", "artifacts", "events"):
        assert api.http.get(f"/v1/jobs/{job_id}/{path}").status_code == 404, path
    assert job_id not in {j["id"] for j in api.http.get("/v1/jobs").json()}
    assert api.http.delete(f"/v1/jobs/{job_id}").status_code == 404
