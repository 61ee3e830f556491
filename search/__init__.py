"""Search across meetings: passages cut from corrected transcripts (passages.py), the
text embedders (embedder.py), the Qdrant index (index.py), and the index and query embedder
that the process owning the index opens on first use (engine.py).

It imports `core` only. The worker's embed stage (stages/embed.py) cuts and embeds the
passages into an artifact; the gateway owns the index: its sync (gateway/search_sync.py)
upserts those artifacts, and its search (gateway/search.py, behind gateway/routes/search.py)
embeds the query and asks the index."""
