"""The index and the query embedder of the one process that owns the index (the gateway,
see gateway/services/search.py for why), both opened on first use: a gateway that nobody searches
never loads the model, and a process holding several gateways' services at once (tests)
does not fight over the local index's lock until one of them really needs it."""

from __future__ import annotations

import threading
import weakref
from pathlib import Path

from core.errors import Conflict
from core.settings import Settings
from search.embedder import TextEmbedder, load_text_embedder
from search.index import SearchIndex

# The local-mode folders a SearchEngine of this process has open. Local mode locks its
# folder to one client; a second one in the same process (several gateways' services in
# one test process) is refused here, before QdrantClient, which fails too but leaves the
# lock file open behind it. (An engine dropped without being closed frees its folder.)
_OPEN_HERE: dict[Path, weakref.ref[SearchEngine]] = {}
_OPEN_HERE_LOCK = threading.Lock()


class SearchEngine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._index: SearchIndex | None = None
        self._embedder: TextEmbedder | None = None
        self._local: Path | None = None  # the local-mode folder this engine holds open

    def index(self) -> SearchIndex:
        with self._lock:
            if self._index is None:
                self._index = self._open()
            return self._index

    def _open(self) -> SearchIndex:
        url, path = self.settings.qdrant_url, self.settings.qdrant_path
        if url:
            return SearchIndex.open(url, path)
        busy = Conflict(
            f"the search index in {path} is open in another Scribe process (a running"
            " `scribe serve`?): point this command at it with --server URL, or set"
            " SCRIBE_QDRANT_URL to a Qdrant server"
        )
        with _OPEN_HERE_LOCK:
            holder = _OPEN_HERE.get(path)
            if holder is not None and holder() is not None:
                raise busy
            try:
                index = SearchIndex.open(url, path)
            except RuntimeError as exc:
                if "already accessed" not in str(exc):
                    raise
                raise busy from None
            _OPEN_HERE[path] = weakref.ref(self)
            self._local = path
        return index

    def embedder(self) -> TextEmbedder:
        with self._lock:
            if self._embedder is None:
                search = self.settings.search
                self._embedder = load_text_embedder(search, threads=search.query_threads)
            return self._embedder

    def close(self) -> None:
        with self._lock:
            if self._index is not None:
                self._index.close()
                self._index = None
            if self._local is not None:
                with _OPEN_HERE_LOCK:
                    _OPEN_HERE.pop(self._local, None)
                self._local = None
