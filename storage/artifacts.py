"""The artifact store: one fsspec filesystem, `file://` or `s3://` chosen by settings.

Every write goes to a temporary key first and is moved into place once complete, so a
crash never leaves half an artifact under a name that looks whole. Methods are
synchronous (fsspec is); async callers wrap them with `asyncio.to_thread`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import fsspec
from pydantic import BaseModel

from core.settings import Settings

M = TypeVar("M", bound=BaseModel)
CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredObject:
    key: str
    uri: str
    sha256: str
    size_bytes: int


class AtomicWriter:
    """Streams bytes to a temporary key; `commit()` moves it into place."""

    def __init__(self, store: ArtifactStore, key: str) -> None:
        self._store = store
        self.key = key
        self._tmp = f"{key}.tmp-{uuid.uuid4().hex}"
        self._file = store.fs.open(store.path(self._tmp), "wb")
        self._hash = hashlib.sha256()
        self.size_bytes = 0

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._hash.update(data)
        self.size_bytes += len(data)

    def commit(self) -> StoredObject:
        self._file.close()
        # A rename on file://; on S3 a server-side copy then a delete of the temporary key
        # (the object under the final key appears whole or not at all either way).
        self._store.fs.mv(self._store.path(self._tmp), self._store.path(self.key))
        return StoredObject(
            self.key, self._store.uri(self.key), self._hash.hexdigest(), self.size_bytes
        )

    def abort(self) -> None:
        self._file.close()
        with suppress(FileNotFoundError):
            self._store.fs.rm_file(self._store.path(self._tmp))


class ArtifactStore:
    def __init__(self, protocol: str, root: str, options: dict[str, Any] | None = None) -> None:
        self.protocol = protocol
        # "s3://bucket/prefix" and "bucket/prefix" name the same root.
        self.root = root.removeprefix(f"{protocol}://").rstrip("/")
        if not self.root:
            raise ValueError(f"the artifact store needs a root (for {protocol}: bucket/prefix)")
        opts = dict(options or {})
        if protocol in ("file", "local"):
            opts.setdefault("auto_mkdir", True)  # S3 has no folders; local needs them made
        else:
            # The gateway and every worker write the same bucket: a cached listing in one
            # process would hide another's objects from `exists`.
            opts.setdefault("use_listings_cache", False)
        self.fs: fsspec.AbstractFileSystem = fsspec.filesystem(protocol, **opts)
        if self.is_local:
            Path(self.root).mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> ArtifactStore:
        if settings.protocol not in ("file", "local") and not settings.storage.root:
            raise ValueError(
                f"STORAGE_PROTOCOL={settings.protocol} needs SCRIBE_STORAGE__ROOT=bucket/prefix"
            )
        return cls(settings.protocol, settings.storage_root, settings.storage.options)

    @property
    def is_local(self) -> bool:
        return self.protocol in ("file", "local")

    # ------------------------------------------------------------ addressing

    def path(self, key: str) -> str:
        """The filesystem path of a key (keys are built from server-side ids only)."""
        if ".." in key.split("/") or key.startswith("/"):
            raise ValueError(f"invalid artifact key {key!r}")
        return f"{self.root}/{key}"

    def uri(self, key: str) -> str:
        return f"{self.protocol}://{self.path(key)}"

    def key_of(self, uri: str) -> str:
        prefix = f"{self.protocol}://{self.root}/"
        if not uri.startswith(prefix):
            raise ValueError(f"{uri} is not in this store ({prefix})")
        return uri[len(prefix) :]

    # ------------------------------------------------------------ writing

    def writer(self, key: str) -> AtomicWriter:
        """A writer for `key`: `write()` chunks, then `commit()` (or `abort()`)."""
        return AtomicWriter(self, key)

    def put_bytes(self, key: str, data: bytes) -> StoredObject:
        w = AtomicWriter(self, key)
        try:
            w.write(data)
        except BaseException:
            w.abort()
            raise
        return w.commit()

    def put_json(self, key: str, model: BaseModel) -> StoredObject:
        return self.put_bytes(key, model.model_dump_json(indent=1).encode())

    def put_file(self, key: str, local: Path) -> StoredObject:
        w = AtomicWriter(self, key)
        try:
            with open(local, "rb") as src:
                while chunk := src.read(CHUNK):
                    w.write(chunk)
        except BaseException:
            w.abort()
            raise
        return w.commit()

    # ------------------------------------------------------------ reading

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self.path(key)))

    def get_bytes(self, key: str) -> bytes:
        data: bytes = self.fs.cat_file(self.path(key))
        return data

    def get_json(self, key: str, model: type[M]) -> M:
        return model.model_validate_json(self.get_bytes(key))

    def get_dict(self, key: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.get_bytes(key))
        return data

    def sha256(self, key: str) -> str:
        h = hashlib.sha256()
        with self.fs.open(self.path(key), "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
        return h.hexdigest()

    @contextmanager
    def local_file(self, key: str, suffix: str = "") -> Iterator[Path]:
        """A local path holding the object: the file itself on `file://` (no copy),
        a temporary download elsewhere (removed on exit)."""
        if self.is_local:
            yield Path(self.path(key))
            return
        tmpdir = Path(tempfile.mkdtemp(prefix="scribe-"))
        try:
            dst = tmpdir / f"object{suffix}"
            self.fs.get(self.path(key), str(dst))
            yield dst
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    # ------------------------------------------------------------ deleting

    def delete_prefix(self, prefix: str) -> None:
        """Remove every object under `prefix` (a folder on file://, a key prefix on S3)."""
        path = self.path(prefix.rstrip("/"))
        if self.is_local:
            if self.fs.exists(path):
                self.fs.rm(path, recursive=True)
            return
        # S3 has no folders: list the keys under the prefix and delete them (in batches).
        keys = self.fs.find(path + "/")
        if keys:
            self.fs.rm(keys)

    def delete(self, key: str) -> None:
        with suppress(FileNotFoundError):
            self.fs.rm_file(self.path(key))

    def prune_empty(self, key: str) -> None:
        """Remove the folders above `key` that are left empty, up to the store's root
        (file:// only; S3 has no folders)."""
        if not self.is_local:
            return
        root = Path(self.root).resolve()
        folder = Path(self.path(key)).resolve().parent
        while folder != root and root in folder.parents:
            try:
                folder.rmdir()  # only when empty
            except OSError:
                return
            folder = folder.parent


def speaker_prefix(speaker_id: str) -> str:
    """Where an enrolled speaker's clips are kept."""
    return f"speakers/{speaker_id}"


def job_prefix(job_id: str) -> str:
    return f"jobs/{job_id}"


def upload_key(job_id: str) -> str:
    return f"jobs/{job_id}/upload/source"


def artifact_dir(job_id: str, stage: str, key: str) -> str:
    return f"jobs/{job_id}/{stage}/{key}"
