"""The browser page: web/'s static export (`npm run build` in web/, which scripts/install.sh
runs), served at `/` with its assets under `/_next/`. No Node process runs here.

Without a build, `/` says how to make one instead; the API works either way.

The page is served with a Content-Security-Policy that lets it load only this origin's
files, and run, of inline scripts, exactly those the export holds (Next.js writes its
hydration data as inline `<script>`s): their sha256 hashes are read from the HTML it
serves, each time (gateway.http.headers.csp_for). A script that someone managed to put into
the page or into a transcript (say, a speaker named `<script>...`) does not run.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from gateway.http.headers import csp_for

PAGE_DIR = Path(__file__).resolve().parents[2] / "web" / "out"

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Scribe</title></head>
<body><h1>Scribe</h1>
<p>The page is not built. Run <code>scripts/install.sh</code> (it needs Node.js 20.19 or
newer and npm) or <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code>, then reload.
The API is at <a href="/docs">/docs</a>.</p></body></html>
"""


def install(app: FastAPI, page_dir: Path = PAGE_DIR) -> None:
    """`/` and `/_next/*` from `page_dir` (read at each request, so a rebuild shows at once)."""

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        index_html = page_dir / "index.html"
        html = index_html.read_text(encoding="utf-8") if index_html.is_file() else NOT_BUILT
        # The HTML names the current build's hashed assets: never cached; the assets are.
        return HTMLResponse(
            html,
            headers={"Cache-Control": "no-cache", "Content-Security-Policy": page_policy(html)},
        )

    @app.get("/pcm-worklet.js", include_in_schema=False)
    async def pcm_worklet() -> Response:
        # The live meeting's audio tap (web/public/pcm-worklet.js): an AudioWorklet module
        # must be a script of this origin, as the page's policy wants.
        path = page_dir / "pcm-worklet.js"
        if not path.is_file():
            return Response("not built", status_code=404, media_type="text/plain")
        return Response(
            path.read_bytes(),
            media_type="text/javascript",
            headers={"Cache-Control": "no-cache"},
        )

    app.mount(
        "/_next",
        StaticFiles(directory=page_dir / "_next", check_dir=False),
        name="page-assets",
    )


def page_policy(html: str) -> str:
    # The icon is a data: URL (web/src/app/layout.tsx); audio, events and the API are
    # this origin's.
    return csp_for(html, extra=["img-src 'self' data:"])
