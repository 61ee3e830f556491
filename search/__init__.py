"""Search across meetings: passages cut from corrected transcripts, text embedders, and the
Qdrant index. Imports `core` and `storage` only; `stages` (the embed stage) and `gateway`
(the index's owner and the search API) import it."""
