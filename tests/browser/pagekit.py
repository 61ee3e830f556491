"""What the browser tests check beside the page's own behaviour: accessibility with axe-core
(the npm package web/ installs), the JavaScript a first visit downloads, the tab's memory."""

from __future__ import annotations

import gzip
import json
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.conftest import ARTIFACTS, REPO

if TYPE_CHECKING:
    from playwright.sync_api import Page

AXE = REPO / "web" / "node_modules" / "axe-core" / "axe.min.js"
BUDGETS = ARTIFACTS / "budgets.json"


def axe_problems(page: Page, where: str) -> list[str]:
    """Serious and critical axe-core violations on the page as it is now."""
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing ({AXE.relative_to(REPO)}): run scripts/web.sh")
    if not page.evaluate("() => Boolean(window.axe)"):
        # Run by the browser's tools, not as a <script> of the page: the page's CSP allows
        # no inline script but its own, and must not be turned off for this.
        page.evaluate(AXE.read_text() + "\n;0")
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => ({id: v.id, impact: v.impact,
                        nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"""
    )
    return [f"{where}: {v['id']} ({v['impact']}) at {v['nodes']}" for v in found]


def first_load_js(page: Page, url: str) -> dict[str, int]:
    """Load `url` in `page`; the JavaScript it fetched (by the browser's resource timing):
    files, bytes, and bytes once gzipped (what a compressing proxy sends)."""
    page.goto(url, wait_until="networkidle")
    scripts: list[str] = page.evaluate(
        "() => performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => new URL(n).pathname.endsWith('.js'))"
    )
    bodies = [urllib.request.urlopen(s, timeout=10).read() for s in scripts]
    return {
        "files": len(bodies),
        "bytes": sum(len(b) for b in bodies),
        "gzip_bytes": sum(len(gzip.compress(b, 9)) for b in bodies),
    }


def tab_memory(page: Page) -> dict[str, float]:
    """The tab's JavaScript heap in use and its DOM nodes (Chromium's own counters)."""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("HeapProfiler.collectGarbage")
        cdp.send("Performance.enable")
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    finally:
        cdp.detach()
    heap = round(metrics["JSHeapUsedSize"] / 2**20, 1)
    return {"js_heap_mb": heap, "dom_nodes": metrics["Nodes"]}


def record_budgets(figures: dict[str, Any]) -> Path:
    """Merge `figures` into test-artifacts/budgets.json (docs/page.md's figures come from it)."""
    ARTIFACTS.mkdir(exist_ok=True)
    known: dict[str, Any] = json.loads(BUDGETS.read_text()) if BUDGETS.exists() else {}
    known.update(figures)
    BUDGETS.write_text(json.dumps(known, indent=2, sort_keys=True) + "\n")
    print(f"budgets: {json.dumps(figures, sort_keys=True)}")
    return BUDGETS
