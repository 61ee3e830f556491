"""Artifact store (fsspec) and job store (PostgreSQL)."""
