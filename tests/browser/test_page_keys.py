"""The page on a server with API keys on: it asks for a key, keeps it for the tab only
(sessionStorage, never localStorage), and opens the key's own job, all under the page's
Content-Security-Policy (a violation is an error here); the live events (EventSource) and
the player (<audio>), which cannot send the key, go through a short-lived stream token. An
admin key gets a Keys panel: its team's keys, a new one whose token is shown once,
revoking one."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import httpx
import pytest

from cli.local import LocalSystem
from core.events import JobEvent
from gateway.services import Services
from storage.auth import PREFIX_LEN
from tests.browser.conftest import run_async
from tests.browser.pagekit import axe_problems
from tests.integration.stored_jobs import finished_job, queued_job
from tests.tenants import new_tenant

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Browser, Page, ViewportSize

pytestmark = pytest.mark.slow

LAPTOP: ViewportSize = {"width": 1366, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
MB = 1024 * 1024


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
    page.on("console", lambda m: errors.append(m.text) if "Security Policy" in m.text else None)
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
        assert page.evaluate("() => sessionStorage.getItem('scribe.apiKey')") == made["token"]
        assert page.evaluate("() => localStorage.getItem('scribe.apiKey')") is None

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


def use_key(page: Page, token: str) -> None:
    """Save `token` in the page's key field; back once the page has asked who it is."""
    page.fill("#api-key-input", token)
    with page.expect_response(lambda r: r.url.endswith("/v1/me")) as me:
        page.press("#api-key-input", "Enter")
    assert me.value.ok, me.value.status


def test_admin_manages_its_teams_keys(
    page_gateway_with_keys: LocalSystem, browser: Browser, screenshots: Path
) -> None:
    base = page_gateway_with_keys.url
    made: dict[str, str] = {}

    async def prepare() -> None:
        services = await Services.connect(page_gateway_with_keys.settings)
        try:
            suffix = uuid.uuid4().hex[:8]
            admin, admin_token = await services.auth.create_key(
                f"admin-{suffix}", admin=True, max_duration_s=3600, max_concurrent_jobs=3
            )
            member, member_token = await services.auth.create_key(
                f"member-{suffix}", tenant_id=admin.tenant_id
            )
            other = await new_tenant(services.auth)
            made.update(
                admin=admin.id,
                admin_token=admin_token,
                member=member.id,
                member_token=member_token,
                other=other.key_id,
                other_prefix=other.token[:PREFIX_LEN],
            )
        finally:
            await services.close()

    run_async(prepare)
    context = browser.new_context(viewport=LAPTOP, locale="en-GB")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(30_000)
    problems: list[str] = []
    try:
        page.goto(base + "/")
        page.wait_for_selector("#api-key-input")

        # A plain key of the same team: no Keys panel.
        use_key(page, made["member_token"])
        page.wait_for_selector("#jobs-empty")  # the key works: its (empty) list came
        page.wait_for_timeout(300)
        assert page.locator("#keys").count() == 0

        # The admin key: its team's keys, itself marked as the key in use, not revocable.
        use_key(page, made["admin_token"])
        own = page.locator(f"#key-list li[data-key='{made['admin']}']")
        own.wait_for()
        assert "this key" in own.inner_text() and "admin" in own.inner_text()
        assert own.locator(".revoke").count() == 0
        page.wait_for_selector(f"#key-list li[data-key='{made['member']}'] .revoke")
        listed = page.inner_text("#keys")
        assert page.locator(f"#key-list li[data-key='{made['other']}']").count() == 0
        assert made["other_prefix"] not in listed
        problems += axe_problems(page, "keys")

        # More than the admin's own limit: refused, and the page says why.
        page.fill("#key-name", "too-many")
        page.fill("#key-jobs", "5")
        page.click("#key-create button[type=submit]")
        page.wait_for_selector("#keys-status.bad:has-text('more than your own')")
        assert page.locator("#key-token").count() == 0

        # A new key with a limit of its own: its token, once; a working key.
        page.fill("#key-name", "uploader")
        page.fill("#key-upload-mb", "5")
        page.fill("#key-jobs", "1")
        page.click("#key-create button[type=submit]")
        page.wait_for_selector("#key-token")
        token = page.input_value("#key-token")
        assert token.startswith("scr_") and "not be shown again" in page.inner_text("#key-made")
        me = httpx.get(base + "/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert me.status_code == 200, me.text
        who = me.json()
        assert who["admin"] is False and who["key_name"] == "uploader"
        assert who["max_upload_bytes"] == 5 * MB and who["max_concurrent_jobs"] == 1
        assert who["max_duration_s"] == 3600  # left empty: the admin's own
        row = page.locator(f"#key-list li[data-key='{who['key_id']}']")
        row.wait_for()
        assert "uploads up to 5.0 MB" in row.inner_text() and "1 job at a time" in row.inner_text()
        page.screenshot(path=str(screenshots / "keys-admin-laptop.png"), full_page=True)
        problems += axe_problems(page, "keys, new token")

        # Revoking takes a yes, by keyboard too: Escape keeps the key, Enter on the yes
        # revokes it; then the row says so and the token is refused.
        row.locator(".revoke").focus()
        page.keyboard.press("Enter")
        page.wait_for_selector(f"#key-list li[data-key='{who['key_id']}'] .confirm:focus")
        page.keyboard.press("Escape")
        page.wait_for_selector(f"#key-list li[data-key='{who['key_id']}'] .revoke:focus")
        assert row.locator(".confirm").count() == 0
        page.keyboard.press("Enter")
        page.wait_for_selector(f"#key-list li[data-key='{who['key_id']}'] .confirm:focus")
        page.keyboard.press("Enter")
        page.wait_for_selector(f"#key-list li[data-key='{who['key_id']}'][data-revoked]")
        assert "revoked" in row.inner_text()
        assert row.locator(".revoke").count() == 0
        gone = httpx.get(base + "/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert gone.status_code == 401, gone.text

        # The token is not shown again: not after reloading the page.
        page.reload()
        page.wait_for_selector(f"#key-list li[data-key='{who['key_id']}'][data-revoked]")
        assert page.locator("#key-token").count() == 0
        assert made["other_prefix"] not in page.inner_text("#keys")

        # A phone's width: nothing wider than the screen.
        page.set_viewport_size(PHONE)
        page.wait_for_timeout(200)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than a phone"
        page.locator("#keys").scroll_into_view_if_needed()
        page.screenshot(path=str(screenshots / "keys-admin-phone.png"), full_page=True)
        problems += axe_problems(page, "keys, phone")
        assert problems == [], problems
        assert errors == [], errors
    finally:
        context.close()
