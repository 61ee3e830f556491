"""The headers of every answer, from the real uvicorn gateway of tests/security/conftest.py:
`curl -I /` used to show no Content-Security-Policy, nosniff, frame protection or
Referrer-Policy, and /docs ran Swagger UI from a CDN. Now every answer (the API's, the
guard's and the server's own refusals) has them; the page's policy allows this origin's
files only and, of inline scripts, exactly those of the HTML it is sent with (by hash);
/docs is Swagger UI from the installed package's files."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import httpx
from swagger_ui_bundle import swagger_ui_path

from gateway.http.page import PAGE_DIR
from tests.security.conftest import Gateway
from tests.security.test_hostile_clients import exchange, request_head
from tests.tenants import Tenant

WANTED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def assert_protected(headers: httpx.Headers | dict[str, str], what: str) -> None:
    for name, value in WANTED.items():
        assert headers.get(name) == value, (what, name, dict(headers))
    policy = directives(headers.get("content-security-policy", ""))
    assert policy.get("frame-ancestors") == ["'none'"], (what, policy)


def directives(policy: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        if words := part.split():
            out[words[0].lower()] = words[1:]
    return out


def raw_headers(answer: bytes) -> dict[str, str]:
    head = answer.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head)}


async def test_every_kind_of_answer_has_the_headers(gateway: Gateway, alice: Tenant) -> None:
    async with gateway.client() as c:
        for path in ("/", "/healthz", "/openapi.json", "/v1/jobs", "/no-such-route", "/docs",
                     "/docs/assets/swagger-ui.css", "/v1/stages"):  # fmt: skip
            resp = await c.get(path)
            assert_protected(resp.headers, f"GET {path} ({resp.status_code})")
        resp = await c.head("/")
        assert_protected(resp.headers, "HEAD /")
    async with gateway.client(alice) as c:
        resp = await c.get("/v1/jobs/not-a-job")
        assert resp.status_code == 404
        assert_protected(resp.headers, "a 404 of the API")
    # The guard's refusal (413 from Content-Length), and the server's own (408, 431), which
    # no ASGI app sends.
    head = request_head("POST", "/v1/jobs/x/corrections", f"Authorization: Bearer {alice.token}",
                        f"Content-Length: {10**8}")  # fmt: skip
    answer, _ = await exchange(gateway, head)
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert_protected(raw_headers(answer), "the guard's 413")
    answer, _ = await exchange(gateway, b"GET / HTTP/1.1\r\nHost: x")
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert_protected(raw_headers(answer), "the server's 408")
    answer, _ = await exchange(gateway, b"GET / HTTP/1.1\r\nX: " + b"a" * 200_000)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert_protected(raw_headers(answer), "the server's 431")


async def test_api_answers_may_run_nothing(gateway: Gateway) -> None:
    async with gateway.client() as c:
        resp = await c.get("/healthz")
    assert directives(resp.headers["content-security-policy"])["default-src"] == ["'none'"]


# ---------------------------------------------------------------- the page


def inline_scripts(html: str) -> list[str]:
    """Inline scripts found another way than the gateway's parser: a regex."""
    found = re.findall(r"<script\b([^>]*)>(.*?)</script\s*>", html, flags=re.S | re.I)
    return [body for attrs, body in found if not re.search(r"\bsrc\s*=", attrs, flags=re.I)]


def sha256_source(script: str) -> str:
    digest = hashlib.sha256(script.replace("\r\n", "\n").encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def assert_first_party(policy: dict[str, list[str]]) -> None:
    """Every source of every directive is this origin, nothing, a hash or data:."""
    for name, sources in policy.items():
        for source in sources:
            ok = source in ("'self'", "'none'", "data:") or source.startswith("'sha256-")
            assert ok, f"{name} allows {source}"


def assert_scripts_match(html: str, policy: dict[str, list[str]]) -> None:
    scripts = policy["script-src"]
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, scripts
    hashes = {s for s in scripts if s.startswith("'sha256-")}
    wanted = {sha256_source(s) for s in inline_scripts(html)}
    assert hashes == wanted, f"CSP hashes {sorted(hashes)} for inline scripts {sorted(wanted)}"


def assert_no_third_party_url(html: str) -> None:
    urls = re.findall(r"""\b(?:src|href|action)\s*=\s*["']?([^"'\s>]+)""", html, flags=re.I)
    outside = [u for u in urls if re.match(r"(?i)^(?:[a-z][a-z0-9+.-]*:)?//", u)]
    assert not outside, outside


async def test_the_page_runs_only_its_own_inline_scripts_by_hash(gateway: Gateway) -> None:
    index = PAGE_DIR / "index.html"
    assert index.is_file(), "the page is not built (scripts/web.sh builds it; Node.js 20.19+)"
    async with gateway.client() as c:
        resp = await c.get("/")
    assert resp.status_code == 200
    html = resp.text
    assert len(inline_scripts(html)) >= 1, "the export has no inline script: nothing to check"
    policy = directives(resp.headers["content-security-policy"])
    assert policy["default-src"] == ["'self'"]
    assert "style-src" not in policy or "'unsafe-inline'" not in policy["style-src"]
    assert_scripts_match(html, policy)
    assert_first_party(policy)
    assert_no_third_party_url(html)


async def test_the_hashes_follow_a_rebuilt_page(gateway: Gateway, tmp_path: Path) -> None:
    """The policy is made from the HTML served, whatever it holds (CR LF read as a
    browser reads it), not from a list kept beside it."""
    from fastapi import FastAPI

    from gateway.http import page

    html = (
        "<!doctype html><html><head><script>self.a=1</script>\r\n"
        '<script src="/_next/x.js"></script><script type="module">\r\nlet b = \'</p>\''
        "\r\n</script></head><body><script>self.c=[1,\r\n2]</script></body></html>"
    )
    (tmp_path / "index.html").write_text(html, newline="")
    app = FastAPI()
    page.install(app, tmp_path)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        resp = await c.get("/")
    policy = directives(resp.headers["content-security-policy"])
    assert len(inline_scripts(html)) == 3
    assert_scripts_match(html, policy)


# ---------------------------------------------------------------- /docs


async def test_docs_are_served_from_the_installed_package(gateway: Gateway) -> None:
    async with gateway.client() as c:
        resp = await c.get("/docs")
        assert resp.status_code == 200
        html = resp.text
        assert_no_third_party_url(html)
        assert "cdn" not in html.lower()
        policy = directives(resp.headers["content-security-policy"])
        assert_scripts_match(html, policy)
        assert_first_party(policy)
        assets = re.findall(r"""(?:src|href)=["'](/docs/assets/[^"']+)""", html)
        assert {Path(a).name for a in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
        for asset in assets:
            got = await c.get(asset)
            assert got.status_code == 200, asset
            assert got.content == (Path(str(swagger_ui_path)) / Path(asset).name).read_bytes()
        assert (await c.get("/openapi.json")).json()["openapi"].startswith("3.1")
        # Only what /docs loads: not the package's index.html, which loads an example API.
        for other in ("index.html", "swagger-initializer.js", "..%2F__init__.py"):
            assert (await c.get(f"/docs/assets/{other}")).status_code == 404, other
