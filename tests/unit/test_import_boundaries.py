"""The picture in docs/architecture.md stays true: no model library below stages/, none in
the gateway; inside the gateway, routes over services over stores, with the HTTP plumbing
knowing neither routes nor services."""

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


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, dotted in full; `from a.b import c` gives both `a.b`
    and `a.b.c` (c may be a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.relative_to(REPO)}: a relative import"
            assert node.module is not None
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


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


def gateway_modules(folder: str) -> list[Path]:
    return sorted((REPO / "gateway" / folder).rglob("*.py"))


@pytest.mark.parametrize("path", gateway_modules("routes"), ids=lambda p: p.name)
def test_routes_reach_stores_and_search_through_services(path: Path) -> None:
    """A route translates HTTP and calls a service (gateway/services): it never imports a
    store (`storage`) or the search package itself."""
    bad = {n for n in imported_modules(path) if within(n, "storage") or within(n, "search")}
    assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", gateway_modules("http"), ids=lambda p: p.name)
def test_the_http_plumbing_knows_neither_routes_nor_services(path: Path) -> None:
    """gateway/http sits under routes and services. Only deps.py, which hands routes the
    services container, imports it (and nothing else of gateway/services)."""
    allowed = {"gateway.services.container"} if path.name == "deps.py" else set()
    bad = {
        n
        for n in imported_modules(path)
        if within(n, "gateway.routes")
        or (within(n, "gateway.services") and not any(within(n, a) for a in allowed))
    }
    assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", gateway_modules("services"), ids=lambda p: p.name)
def test_services_never_import_routes(path: Path) -> None:
    bad = {n for n in imported_modules(path) if within(n, "gateway.routes")}
    assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


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
