"""The S3 switch: with `protocol=s3`, a `bucket/prefix` root and s3fs options, every upload
and artifact lives in the bucket, with no code change. Against a real S3 endpoint
(`moto_server` on loopback)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from core.graph import DEFAULT_GRAPH
from core.settings import Settings, StorageSettings
from storage.artifacts import ArtifactStore, upload_key
from tests.deploy.conftest import MakeSettings, S3Endpoint, running_system


def s3_store(s3: S3Endpoint, prefix: str = "scribe") -> ArtifactStore:
    return ArtifactStore("s3", f"{s3.bucket}/{prefix}", s3.options)


def test_store_round_trip_on_s3(s3_bucket: S3Endpoint, tmp_path: Path) -> None:
    store = s3_store(s3_bucket)
    stored = store.put_bytes("jobs/j1/upload/source", b"RIFF....")
    assert stored.uri == f"s3://{s3_bucket.bucket}/scribe/jobs/j1/upload/source"
    assert store.key_of(stored.uri) == "jobs/j1/upload/source"
    assert store.exists("jobs/j1/upload/source")
    assert store.sha256("jobs/j1/upload/source") == hashlib.sha256(b"RIFF....").hexdigest()
    with store.local_file("jobs/j1/upload/source", suffix=".wav") as local:
        assert local.read_bytes() == b"RIFF...."
        assert local.suffix == ".wav"
    assert not local.exists()  # the download is removed afterwards
    src = tmp_path / "a.bin"
    src.write_bytes(b"x" * 3_000_000)
    assert store.put_file("jobs/j1/decode/k/audio.wav", src).size_bytes == 3_000_000
    # An aborted write leaves no object, not even the temporary one.
    writer = store.writer("jobs/j1/decode/k/partial")
    writer.write(b"half")
    writer.abort()
    keys = sorted(store.fs.find(f"{s3_bucket.bucket}/scribe"))
    assert keys == [
        f"{s3_bucket.bucket}/scribe/jobs/j1/decode/k/audio.wav",
        f"{s3_bucket.bucket}/scribe/jobs/j1/upload/source",
    ]
    # A second store (another process) sees the objects at once: no stale listing cache.
    assert s3_store(s3_bucket).exists("jobs/j1/decode/k/audio.wav")
    store.delete("jobs/j1/nothing-here")
    store.delete_prefix("jobs/j1")
    assert store.fs.find(f"{s3_bucket.bucket}/scribe") == []
    assert not store.exists("jobs/j1/upload/source")


def test_s3_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_PROTOCOL", "s3")
    monkeypatch.setenv("SCRIBE_STORAGE__ROOT", "meetings/scribe")
    monkeypatch.setenv(
        "SCRIBE_STORAGE__OPTIONS",
        '{"endpoint_url": "http://minio:9000", "key": "k", "secret": "s"}',
    )
    s = Settings()
    assert (s.protocol, s.storage_root) == ("s3", "meetings/scribe")
    assert s.storage.options["endpoint_url"] == "http://minio:9000"
    # What a child process (worker) receives carries the same storage.
    child = Settings.model_validate({"storage": s.storage.model_dump()})
    assert child.storage.options == s.storage.options


def test_s3_without_a_bucket_is_refused() -> None:
    s = Settings(storage=StorageSettings(protocol="s3"))
    with pytest.raises(ValueError, match="bucket/prefix"):
        ArtifactStore.from_settings(s)


@pytest.mark.slow
def test_whole_pipeline_on_s3(
    isolated_settings: MakeSettings, s3_bucket: S3Endpoint, short_audio: Path, tmp_path: Path
) -> None:
    settings = isolated_settings(
        storage=StorageSettings(
            protocol="s3", root=f"{s3_bucket.bucket}/scribe", options=s3_bucket.options
        )
    )
    store = s3_store(s3_bucket)
    with running_system(settings, tmp_path / "worker.log") as (_, api, _extra):
        job_id, events = api.run(short_audio, timeout_s=240)
        assert events[-1].type == "job.succeeded", [(e.type, e.data) for e in events]
        result = api.result(job_id)
        assert result["segments"] and api.words_of(result)
        assert api.result_text(job_id, "srt").text.strip()

        artifacts = api.artifacts(job_id)
        assert sorted(a["stage"] for a in artifacts) == sorted(DEFAULT_GRAPH.names)
        for artifact in artifacts:
            assert artifact["uri"].startswith(f"s3://{s3_bucket.bucket}/scribe/jobs/{job_id}/")
            key = store.key_of(artifact["uri"])
            assert store.exists(key), key
            assert store.sha256(key) == artifact["sha256"], key
        # The upload went to the bucket too, byte for byte.
        assert store.get_bytes(upload_key(job_id)) == short_audio.read_bytes()
        # ... and so did the decoded audio the artifacts point at.
        keys = store.fs.find(f"{s3_bucket.bucket}/scribe/jobs/{job_id}")
        assert any(k.endswith("/audio.wav") for k in keys)
        assert not any(".tmp-" in k for k in keys)

        # Nothing was written to the local artifact directory.
        local = settings.data_dir / "artifacts"
        assert not local.exists() or not any(local.rglob("*"))

        # Deleting the job removes its objects from the bucket.
        assert api.http.delete(f"/v1/jobs/{job_id}").status_code in (200, 204)
        assert store.fs.find(f"{s3_bucket.bucket}/scribe/jobs/{job_id}") == []
        print(f"\nS3 pipeline: job {job_id} succeeded; {len(keys)} objects in the bucket")
