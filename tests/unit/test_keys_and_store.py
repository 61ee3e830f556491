"""Artifact keys and the artifact store's atomic writes (real local filesystem)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from core.artifacts import Turn
from core.keys import artifact_key
from storage.artifacts import ArtifactStore, artifact_dir


def test_same_inputs_and_params_give_the_same_key() -> None:
    a = artifact_key("diarize", inputs=["abc"], params={"n": 2, "m": None}, model="x@1")
    b = artifact_key("diarize", inputs=["abc"], params={"m": None, "n": 2}, model="x@1")
    assert a == b


@pytest.mark.parametrize(
    "change",
    [
        {"inputs": ["abd"]},
        {"params": {"n": 3, "m": None}},
        {"model": "x@2"},
        {"stage": "transcribe"},
    ],
)
def test_any_change_gives_a_new_key(change: dict[str, object]) -> None:
    base: dict[str, object] = {
        "stage": "diarize",
        "inputs": ["abc"],
        "params": {"n": 2, "m": None},
        "model": "x@1",
    }
    args = {**base, **change}
    stage = str(args.pop("stage"))
    assert artifact_key(stage, **args) != artifact_key(  # type: ignore[arg-type]
        "diarize",
        inputs=["abc"],
        params={"n": 2, "m": None},
        model="x@1",
    )


def test_put_and_get_roundtrip(tmp_path: Path) -> None:
    store = ArtifactStore("file", str(tmp_path / "root"))
    obj = store.put_json("jobs/j1/diarize/k/artifact.json", Turn(start=0, end=1, speaker="S1"))
    assert obj.uri == f"file://{tmp_path}/root/jobs/j1/diarize/k/artifact.json"
    assert store.key_of(obj.uri) == "jobs/j1/diarize/k/artifact.json"
    data = store.get_bytes(obj.key)
    assert hashlib.sha256(data).hexdigest() == obj.sha256 == store.sha256(obj.key)
    assert store.get_json(obj.key, Turn).speaker == "S1"


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    store = ArtifactStore("file", str(tmp_path))
    w = store.writer("jobs/j1/upload/source")
    w.write(b"partial")
    w.abort()
    assert not store.exists("jobs/j1/upload/source")
    assert list((tmp_path / "jobs" / "j1" / "upload").iterdir()) == []


def test_uncommitted_write_is_invisible(tmp_path: Path) -> None:
    store = ArtifactStore("file", str(tmp_path))
    w = store.writer("a/b")
    w.write(b"x" * 10)
    assert not store.exists("a/b")  # a crash here leaves only a .tmp-* file
    obj = w.commit()
    assert store.exists("a/b") and obj.size_bytes == 10


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "jobs/../../x"])
def test_keys_cannot_escape_the_root(tmp_path: Path, key: str) -> None:
    store = ArtifactStore("file", str(tmp_path))
    with pytest.raises(ValueError):
        store.path(key)


def test_artifact_dir_layout() -> None:
    assert artifact_dir("j", "merge", "k") == "jobs/j/merge/k"
