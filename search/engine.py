"""The index and the query embedder of the one process that owns the index (the gateway,
see gateway/search.py for why), both opened on first use: a gateway that nobody searches
never loads the model, and a process holding several gateways' services at once (tests)
does not fight over the local index's lock until one of them really needs it."""

from __future__ import annotations

import threading

from core.errors import Conflict
from core.settings import Settings
from search.embedder import TextEmbedder, load_text_embedder
from search.index import SearchIndex


class SearchEngine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._index: SearchIndex | None = None
        self._embedder: TextEmbedder | None = None

    def index(self) -> SearchIndex:
        with self._lock:
            if self._index is None:
                try:
                    self._index = SearchIndex.open(
                        self.settings.qdrant_url, self.settings.qdrant_path
                    )
                except RuntimeError as exc:
                    if "already accessed" not in str(exc):
                        raise
                    raise Conflict(
                        f"the search index in {self.settings.qdrant_path} is open in another"
                        " Scribe process (a running `scribe serve`?): point this command at"
                        " it with --server URL, or set SCRIBE_QDRANT_URL to a Qdrant server"
                    ) from None
            return self._index

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
