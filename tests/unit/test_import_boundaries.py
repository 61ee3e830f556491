"""The picture in docs/architecture.md stays true: no model library below stages/, none in
the gateway."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIGHT_PACKAGES = ("gateway", "core", "storage", "events", "search")
PROJECT_PACKAGES = {"core", "storage", "events", "search", "stages", "gateway", "cli", "bench"}
FORBIDDEN = {"torch", "torchaudio", "faster_whisper", "pyannote", "ctranslate2", "stages"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def light_modules() -> list[Path]:
    return sorted(p for pkg in LIGHT_PACKAGES for p in (REPO / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", light_modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_model_imports(path: Path) -> None:
    bad = imported_roots(path) & FORBIDDEN
    assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


def test_gateway_never_imports_stages_at_all() -> None:
    for path in (REPO / "gateway").rglob("*.py"):
        assert "stages" not in imported_roots(path), path


def test_search_imports_core_and_storage_only() -> None:
    """search/ sits between storage and its two users (the embed stage, the gateway)."""
    for path in (REPO / "search").rglob("*.py"):
        ours = imported_roots(path) & PROJECT_PACKAGES
        assert ours <= {"core", "storage", "search"}, f"{path.relative_to(REPO)} imports {ours}"


def test_importing_the_gateway_loads_no_torch() -> None:
    code = (
        "import gateway.app, sys; "
        "print(sorted(m for m in ('torch', 'faster_whisper', 'pyannote', 'ctranslate2',"
        " 'stages') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
