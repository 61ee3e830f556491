"""The page on a server with API keys on: it asks for a key, keeps it in the browser, and
opens the key's own job; the live events (EventSource) and the player (<audio>), which
cannot send the key, go through a short-lived stream token."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from cli.local import LocalSystem
from core.events import JobEvent
from gateway.services import Services
from tests.browser.conftest import run_async
from tests.integration.stored_jobs import finished_job, queued_job
from tests.tenants import new_tenant

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Browser

pytestmark = pytest.mark.slow


def test_key_and_stream_tokens(
    page_gateway_with_keys: LocalSystem, browser: Browser, screenshots: Path
) -> None:
    made: dict[str, str] = {}

    async def prepare() -> None:
        services = await Services.connect(page_gateway_with_keys.settings)
        try:
            tenant = await new_tenant(services.auth)
            done = (await finished_job(services)).id
            running = await queued_job(services)
            async with services.pool.acquire() as conn:
                await conn.execute(
                    "UPDATE jobs SET owner = $2 WHERE id = ANY($1::uuid[])",
                    [uuid.UUID(done), uuid.UUID(running)],
                    uuid.UUID(tenant.id),
                )
            made.update(token=tenant.token, done=done, running=running)
        finally:
            await services.close()

    async def progress() -> None:
        services = await Services.connect(page_gateway_with_keys.settings)
        try:
            await services.bus.publish(
                JobEvent(
                    type="stage.progress", job_id=made["running"], stage="decode", progress=0.5
                )
            )
        finally:
            await services.close()

    run_async(prepare)
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-GB")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if "/events" in r.url else None)
    page.set_default_timeout(30_000)
    try:
        page.goto(page_gateway_with_keys.url + "/")
        page.wait_for_selector("#api-key-input")
        assert page.inner_text("#api-key-status")  # the server's reason for asking
        page.fill("#api-key-input", made["token"])
        page.press("#api-key-input", "Enter")
        page.wait_for_selector(f"#job-list li[data-job='{made['done']}']")
        assert page.evaluate("() => localStorage.getItem('scribe.apiKey')") == made["token"]

        # The finished job: its audio through a token, since <audio> cannot send the key.
        page.click(f"#job-list li[data-job='{made['done']}'] a")
        page.wait_for_selector("#transcript li.para")
        src = page.get_attribute("#player", "src") or ""
        assert "?token=" in src and made["token"] not in src, src
        page.wait_for_function("() => document.getElementById('player').readyState >= 1")

        # The queued job: its events through a token; a progress event moves the bar.
        page.click(f"#job-list li[data-job='{made['running']}'] a")
        page.wait_for_selector("#stages li[data-stage=decode]")
        run_async(progress)  # kept in the job's stream too: read however late the page connects
        page.wait_for_selector("#stages li[data-stage=decode][data-state=running]")
        assert "50%" in page.inner_text("#stages li[data-stage=decode] .stage-state")
        opened = [u for u in streams if f"/v1/jobs/{made['running']}/events?" in u]
        assert opened and all("token=" in u and made["token"] not in u for u in opened), streams
        page.screenshot(path=str(screenshots / "page-keys-laptop.png"))
        assert errors == [], errors
    finally:
        context.close()
