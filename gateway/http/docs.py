"""`/docs`: Swagger UI from the files of an installed package, never from a CDN.

FastAPI's own /docs loads Swagger UI's script and style from a CDN, so opening the docs
would run a third party's code with this origin's rights. Here the same page
(`get_swagger_ui_html`, FastAPI's "self-hosting JavaScript and CSS for docs") names the
copy of swagger-ui-dist that the `swagger-ui-bundle-v2` package ships, served under
`/docs/assets/` (those three files only: the package's own index.html would load the
petstore example), and is sent with a Content-Security-Policy that allows this origin's
files and the page's one inline script (by its hash) only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from starlette.exceptions import HTTPException
from swagger_ui_bundle import swagger_ui_path

from gateway.http.headers import csp_for

ASSETS = "/docs/assets"
FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def install(app: FastAPI) -> None:
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        # The online validator's badge would be an image from its site.
        swagger_ui_parameters={"validatorUrl": None},
    )
    html = bytes(page.body).decode()
    # Swagger UI's style sheet draws its icons with data: URLs.
    policy = csp_for(html, extra=["img-src 'self' data:"])

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(html, headers={"Content-Security-Policy": policy})

    folder = Path(str(swagger_ui_path))

    @app.get(ASSETS + "/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> FileResponse:
        if name not in FILES:
            raise HTTPException(404, f"no docs file {name[:100]!r}")
        return FileResponse(folder / name, media_type=FILES[name])
