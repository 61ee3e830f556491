"""Artifact keys: a stable hash of a stage's inputs and parameters.

Running a stage on the same inputs with the same parameters and model finds the same key
(and reuses the stored artifact); anything else makes a new key, stored beside the old.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any


def artifact_key(
    stage: str,
    *,
    inputs: Sequence[str],
    params: Mapping[str, Any],
    model: str | None,
    schema_version: int = 1,
) -> str:
    """`inputs` are the sha256 of the input artifacts (content, not ids: same bytes, same key)."""
    doc = {
        "stage": stage,
        "schema": schema_version,
        "inputs": list(inputs),
        "params": dict(params),
        "model": model,
    }
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]
