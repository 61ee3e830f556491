"""Artifact store (fsspec) and the PostgreSQL stores, one per table or concern."""
