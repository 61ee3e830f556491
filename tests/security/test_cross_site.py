"""Other web sites' pages against a real uvicorn gateway. With auth off (`scribe serve`'s
default) a page the user visits could upload to it (a form post, `Origin` of the page) and,
by DNS rebinding (its own name resolving to 127.0.0.1, so `Host` names it), read and delete
every transcript. Now the gateway answers only to the host names it serves, and refuses a
browser's request that changes something from another site; its own page, and API clients
(no Origin), are served as before. With auth on, the Host is not checked (a key is needed
anyway), and the Origin still is."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from core.settings import Settings
from gateway.services import Services
from tests.integration.stored_jobs import wav_bytes
from tests.security.conftest import Gateway, serving
from tests.security.test_hostile_clients import exchange, request_head, status_and_error
from tests.tenants import Tenant

EVIL = "https://evil.example"


@pytest.fixture(scope="module")
async def open_gateway(guarded_settings: Settings) -> AsyncIterator[Gateway]:
    """Auth off, with the default host names (the test settings add one)."""
    settings = guarded_settings.model_copy(
        update={"auth": "off", "allowed_hosts": Settings().allowed_hosts}
    )
    services = await Services.connect(settings)
    try:
        async with serving(settings, services) as gw:
            yield gw
    finally:
        await services.close()


def upload_files() -> dict[str, tuple[str, bytes, str]]:
    return {"file": ("a.wav", wav_bytes(1.0), "audio/wav")}


async def refused_upload(gw: Gateway, *headers: str) -> tuple[int, dict[str, str]]:
    """An upload's headers only (a 1 GB body announced): the answer, which must come at
    once, before any of the body was asked for."""
    head = request_head(
        "POST", "/v1/jobs", "Content-Type: multipart/form-data; boundary=x",
        f"Content-Length: {10**9}", *headers,
    ).replace(b"Host: scribe", f"Host: {gw.host}:{gw.port}".encode())  # fmt: skip
    answer, elapsed = await exchange(gw, head)
    assert elapsed < 1, elapsed
    return status_and_error(answer)


# ---------------------------------------------------------------- Host (auth off)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example",
                                  "localhost.evil.example:{port}", "10.0.0.7"])  # fmt: skip
async def test_a_host_name_the_gateway_does_not_serve_is_421(
    open_gateway: Gateway, host: str
) -> None:
    async with open_gateway.client() as c:
        resp = await c.get("/v1/jobs", headers={"Host": host.format(port=open_gateway.port)})
    assert resp.status_code == 421, resp.text
    error = resp.json()["error"]
    assert error["code"] == "misdirected_request"
    assert "does not answer to the host name" in error["message"]
    assert "SCRIBE_ALLOWED_HOSTS" in error["message"]


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST",
                                  "[::1]:{port}", "localhost.:{port}"])  # fmt: skip
async def test_the_local_names_are_served(open_gateway: Gateway, host: str) -> None:
    async with open_gateway.client() as c:
        resp = await c.get("/v1/jobs", headers={"Host": host.format(port=open_gateway.port)})
    assert resp.status_code == 200, resp.text


async def test_a_refused_host_is_refused_before_its_body_is_read(open_gateway: Gateway) -> None:
    reader, writer = await asyncio.open_connection(open_gateway.host, open_gateway.port)
    started = time.monotonic()
    head = request_head(
        "POST", "/v1/jobs", "Content-Type: multipart/form-data; boundary=x",
        f"Content-Length: {10**9}",
    ).replace(b"Host: scribe", b"Host: evil.example")  # fmt: skip
    writer.write(head)
    answer = await asyncio.wait_for(reader.read(65536), 5)
    writer.close()
    assert status_and_error(answer)[0] == 421, answer
    assert time.monotonic() - started < 1


async def test_a_star_turns_the_host_check_off(open_gateway: Gateway) -> None:
    settings = open_gateway.settings.model_copy(update={"allowed_hosts": ["*"]})
    async with serving(settings, open_gateway.services) as gw, gw.client() as c:
        resp = await c.get("/v1/jobs", headers={"Host": "evil.example"})
    assert resp.status_code == 200, resp.text


async def test_a_named_host_and_its_subdomains_can_be_allowed(open_gateway: Gateway) -> None:
    settings = open_gateway.settings.model_copy(update={"allowed_hosts": [".scribe.lan"]})
    async with serving(settings, open_gateway.services) as gw, gw.client() as c:
        for host in ("scribe.lan", "box.scribe.lan:8000"):
            assert (await c.get("/healthz", headers={"Host": host})).status_code == 200
        assert (await c.get("/healthz", headers={"Host": "evilscribe.lan"})).status_code == 421
        # The address the connection came in on is always served (e.g. a LAN IP).
        own = {"Host": f"127.0.0.1:{gw.port}"}
        assert (await c.get("/healthz", headers=own)).status_code == 200


# ---------------------------------------------------------------- Origin


@pytest.mark.parametrize("origin", [EVIL, "null", "http://127.0.0.1:1", "http://localhost:{port}"])
async def test_an_upload_from_another_sites_page_is_403(open_gateway: Gateway, origin: str) -> None:
    """A form on evil.example posting to the gateway: refused from its headers. Another
    port of this machine is another site too, and so is localhost for 127.0.0.1."""
    host = f"127.0.0.1:{open_gateway.port}"
    status, error = await refused_upload(
        open_gateway, f"Origin: {origin.format(port=open_gateway.port)}"
    )
    assert status == 403, error
    assert error["code"] == "cross_site_request"
    assert "may not change anything here" in error["message"]
    async with open_gateway.client() as c:  # and a whole one, sent anyway: nothing is made
        # The database is the session's: other tests' jobs are there, so compare.
        before = await job_ids(c, host)
        with contextlib.suppress(httpx.TransportError):  # the gateway may close first
            await c.post("/v1/jobs", files=upload_files(), headers={"Origin": EVIL})
        assert await job_ids(c, host) == before


async def job_ids(c: httpx.AsyncClient, host: str) -> set[str]:
    resp = await c.get("/v1/jobs", params={"limit": 500}, headers={"Host": host})
    assert resp.status_code == 200, resp.text
    return {job["id"] for job in resp.json()}


async def test_a_cross_site_request_without_origin_is_403(open_gateway: Gateway) -> None:
    for site in ("cross-site", "same-site"):
        status, error = await refused_upload(open_gateway, f"Sec-Fetch-Site: {site}")
        assert status == 403, error
        assert f"comes from another site ({site})" in error["message"]


async def test_deleting_from_another_site_is_403_and_the_page_itself_may(
    open_gateway: Gateway,
) -> None:
    own = {"Origin": open_gateway.url, "Sec-Fetch-Site": "same-origin"}
    async with open_gateway.client() as c:
        resp = await c.post("/v1/jobs", files=upload_files(), headers=own)  # the page's
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["id"]
        refused = await c.delete(f"/v1/jobs/{job_id}", headers={"Origin": EVIL})
        assert refused.status_code == 403, refused.text
        assert (await c.get(f"/v1/jobs/{job_id}")).status_code == 200  # still there
        assert (await c.delete(f"/v1/jobs/{job_id}", headers=own)).status_code == 204


async def test_api_clients_without_origin_and_reads_are_served(open_gateway: Gateway) -> None:
    async with open_gateway.client() as c:
        resp = await c.post("/v1/jobs", files=upload_files())  # curl, the CLI
        assert resp.status_code == 202, resp.text
        # A read from another origin is not refused (nothing changes, and without CORS
        # headers its page cannot read the answer).
        assert (await c.get("/v1/jobs", headers={"Origin": EVIL})).status_code == 200


async def test_the_page_works_from_its_own_origin(open_gateway: Gateway) -> None:
    async with open_gateway.client() as c:
        page = await c.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        resp = await c.post(
            "/v1/jobs", files=upload_files(),
            headers={"Origin": f"http://localhost:{open_gateway.port}",
                     "Host": f"localhost:{open_gateway.port}"},
        )  # fmt: skip
    assert resp.status_code == 202, resp.text


async def test_a_proxy_and_public_url_name_the_gateways_own_origin(open_gateway: Gateway) -> None:
    """Behind a proxy that rewrites Host, the page's Origin is what the proxy says the Host
    was, or what public_url names."""
    settings = open_gateway.settings.model_copy(
        update={"public_url": "https://scribe.example.org/", "allowed_hosts": ["*"]}
    )
    async with serving(settings, open_gateway.services) as gw, gw.client() as c:
        via_proxy = {"Origin": "https://box.example.org", "X-Forwarded-Host": "box.example.org"}
        public = {"Origin": "https://scribe.example.org"}
        for headers in (via_proxy, public):
            resp = await c.post("/v1/jobs", files=upload_files(), headers=headers)
            assert resp.status_code == 202, (headers, resp.text)


# ---------------------------------------------------------------- auth on


async def test_with_auth_on_the_host_is_not_checked_but_the_origin_is(
    gateway: Gateway, alice: Tenant
) -> None:
    async with gateway.client(alice) as c:
        resp = await c.get("/v1/jobs", headers={"Host": "scribe.example.com"})
        assert resp.status_code == 200, resp.text
        resp = await c.post("/v1/jobs", files=upload_files())
        assert resp.status_code == 202, resp.text
    status, error = await refused_upload(gateway, f"Authorization: Bearer {alice.token}",
                                         f"Origin: {EVIL}")  # fmt: skip
    assert (status, error["code"]) == (403, "cross_site_request")


async def test_allowed_origins_lets_another_front_end_in(gateway: Gateway, alice: Tenant) -> None:
    settings = gateway.settings.model_copy(update={"allowed_origins": ["https://app.example.com"]})
    async with serving(settings, gateway.services) as gw, gw.client(alice) as c:
        ok = await c.post("/v1/jobs", files=upload_files(),
                          headers={"Origin": "https://app.example.com"})  # fmt: skip
        assert ok.status_code == 202, ok.text
        status, _ = await refused_upload(gw, f"Authorization: Bearer {alice.token}",
                                         "Origin: https://app.example.com:444")  # fmt: skip
        assert status == 403


@pytest.mark.parametrize("origin", [EVIL, "null"])
async def test_no_preflight_answer_opens_the_api_to_another_site(
    open_gateway: Gateway, origin: str
) -> None:
    """No CORS: a page elsewhere cannot send a key or JSON (its preflight is not granted)."""
    async with httpx.AsyncClient(base_url=open_gateway.url, timeout=10) as c:
        resp = await c.options(
            "/v1/jobs",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization,content-type"},
        )  # fmt: skip
    assert "access-control-allow-origin" not in resp.headers
