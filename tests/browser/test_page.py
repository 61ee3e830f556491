"""The page in a real browser against a real Scribe: upload by the keyboard through the file
input, watch the stages over SSE (across a reload), read the transcript in paragraphs,
follow it with the player (a click on a word, the keyboard), rename a speaker and remember
the voice with the consent given, download the SRT, correct lines and give words to another
speaker then undo it all, search and open the meeting at a hit, replay a stage, see a failed
job explained, delete it, forget the voice; axe-core finds nothing serious on the way.
Screenshots go to test-artifacts/ (not committed).
"""

from __future__ import annotations

import re
import struct
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cli.local import LocalSystem
from core.graph import DEFAULT_GRAPH
from tests.browser.edits import correct_and_undo, give_words
from tests.browser.pagekit import axe_problems

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, ViewportSize

pytestmark = pytest.mark.slow

STAGES = DEFAULT_GRAPH.names
LAPTOP: ViewportSize = {"width": 1366, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
JOB_TIMEOUT_MS = 420_000  # generous: a busy CI machine is much slower than an idle one
SAMPLE: dict[str, str] = {}  # the uploaded job, for the search test after this one


def stage_states(page: Page) -> dict[str, str]:
    return {
        s: page.get_attribute(f"#stages li[data-stage={s}]", "data-state") or "" for s in STAGES
    }


def wait_for_states(page: Page, expected: dict[str, str], timeout_ms: int = JOB_TIMEOUT_MS) -> None:
    """Poll the page (not the API): what a person sees is what is checked."""
    deadline = time.monotonic() + timeout_ms / 1000
    while time.monotonic() < deadline:
        states = stage_states(page)
        if all(states[s] == v for s, v in expected.items()):
            return
        failed = [s for s, v in states.items() if v == "failed"]
        if failed:
            pytest.fail(f"stage {failed[0]} failed: {page.inner_text('#job-detail')}")
        page.wait_for_timeout(250)
    pytest.fail(f"stages did not reach {expected}; the page shows {stage_states(page)}")


def empty_wav(tmp: Path) -> Path:
    """A WAV header with no samples: accepted as media, refused by decode."""
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 0)
    path = tmp / "empty.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def player_time(page: Page) -> float:
    return float(page.evaluate("document.getElementById('player').currentTime"))


def rename_with_consent(page: Page) -> None:
    """Rename S1 to Alice and remember the voice: the consent is asked for, then kept."""
    s1_lines = page.locator("#transcript .seg[data-speaker=S1]").count()
    page.click("#speakers li[data-speaker=S1] button.rename")
    page.fill("#rename-S1", "Alice")
    page.check("#speakers li[data-speaker=S1] input[name=remember]")
    page.click("#speakers li[data-speaker=S1] button[type=submit]")
    assert "Say who agreed" in page.inner_text("#speaker-status")
    page.fill("#consent-by-S1", "Alice")
    page.fill("#consent-note-S1", "agreed at the start of the meeting")
    page.fill("#consent-expires-S1", "2030-01-31")
    page.click("#speakers li[data-speaker=S1] button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('#speakers li[data-speaker=S1] .speaker-name')"
        "?.textContent === 'Alice'"
    )
    assert page.locator("#transcript .seg[data-speaker=S1]").count() == s1_lines
    whos = page.locator("#transcript li.para[data-speaker=S1] .who").all_inner_texts()
    assert whos and set(whos) == {"Alice"}
    assert "Speaker 1" not in page.inner_text("#transcript")
    assert "Speaker 1" not in page.inner_text("#speakers")
    assert "Speaker 1 is now Alice" in page.inner_text("#speaker-status")
    person = page.locator("#people-list li:has-text('Alice')")
    person.wait_for()
    facts = person.inner_text()
    assert "consent: Alice" in facts and "until" in facts and "2030" in facts, facts


def replay_when_idle(page: Page, job_id: str, tries: int = 20) -> None:
    """Send the open replay form once no stage runs, as a person would: the search index
    may send embed again (a correction made while it ran) just after it finished, and the
    replay is then refused with "still running"; wait and send it again."""
    for _ in range(tries):
        page.wait_for_function(
            "async (id) => (await (await fetch(`/v1/jobs/${id}`)).json()).stages"
            ".every(s => !['queued', 'running'].includes(s.status))",
            arg=job_id,
            polling=500,
            timeout=120_000,
        )
        with page.expect_response(
            lambda r: r.url.endswith("/replay") and r.request.method == "POST"
        ) as answer:
            page.click("#replay-form button[type=submit]")
        if answer.value.status == 202:
            return
        assert answer.value.status == 409, answer.value.text()
        page.wait_for_selector("#replay-status.bad:has-text('still running')")
        page.wait_for_timeout(1000)
    pytest.fail(f"the replay was refused {tries} times: {page.inner_text('#replay-status')}")


def test_page_end_to_end(
    page_system: LocalSystem,  # before the browser: the session's database fixtures use
    browser: Browser,  # asyncio.run, which cannot start inside Playwright's running loop
    speech_sample: Path,
    screenshots: Path,
    tmp_path: Path,
) -> None:
    context = browser.new_context(viewport=LAPTOP, accept_downloads=True, locale="en-GB")
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    page.on("dialog", lambda d: d.accept())
    page.set_default_timeout(20_000)
    problems: list[str] = []
    try:
        page.goto(page_system.url + "/")
        assert page.title() == "Scribe"
        page.wait_for_selector("#jobs-empty")
        page.screenshot(path=str(screenshots / "page-empty-laptop.png"))
        problems += axe_problems(page, "empty")

        # ---- upload by the keyboard: the file input opens the chooser, Enter sends
        page.click("summary:text('Options')")
        page.fill("input[name=num_speakers]", "2")
        page.focus("#file")
        with page.expect_file_chooser() as chooser:
            page.keyboard.press("Space")
        chooser.value.set_files(str(speech_sample))
        assert "sample.wav" in page.inner_text("#drop-text")
        page.focus("#submit")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r".*#/jobs/[0-9a-f-]{36}$"))
        job_id = page.url.rsplit("/", 1)[1]
        assert "Uploaded sample.wav" in page.inner_text("#upload-status")
        page.wait_for_selector(f"#job-list li[data-job='{job_id}']")

        # ---- live progress; a reload mid-way picks up where it was, not from zero
        page.wait_for_function(
            "() => ['running', 'succeeded'].includes("
            "document.querySelector('#stages li[data-stage=diarize]')?.dataset.state)",
            timeout=JOB_TIMEOUT_MS,
        )
        assert stage_states(page)["decode"] == "succeeded"
        page.screenshot(path=str(screenshots / "page-progress-laptop.png"))
        page.reload()
        page.wait_for_selector("#job-detail")
        page.wait_for_function(
            "() => document.querySelector('#stages li[data-stage=decode]')?.dataset.state"
            " === 'succeeded'"
        )
        wait_for_states(page, dict.fromkeys(STAGES, "succeeded"))
        for s in STAGES:
            assert re.fullmatch(
                r"done · (< 0\.1 s|[\d.]+ s|\d+:\d\d)",
                page.inner_text(f"#stages li[data-stage={s}] .stage-state"),
            )
        assert page.get_attribute("#stage-announcer", "aria-live") == "polite"

        # ---- the transcript: two speakers in paragraphs, colours, timestamps
        page.wait_for_selector("#result #transcript li.para")
        assert page.locator("#speakers li").count() == 2
        labels = page.eval_on_selector_all(
            "#transcript .seg", "ss => ss.map(s => s.dataset.speaker)"
        )
        assert sorted(set(labels)) == ["S1", "S2"]
        paras = page.eval_on_selector_all(
            "#transcript li.para", "ps => ps.map(p => p.dataset.speaker)"
        )
        assert all(a != b for a, b in zip(paras, paras[1:], strict=False)), paras
        text = page.inner_text("#transcript")
        assert len(re.findall(r"[A-Za-z]{2,}", text)) >= 20, text
        assert "Speaker 1" in text and "Speaker 2" in text
        assert re.match(r"\d+:\d\d", page.inner_text("#transcript li.para .t"))
        colours = page.eval_on_selector_all(
            "#transcript li.para",
            "ps => [...new Set(ps.map(p => p.style.getPropertyValue('--c')))]",
        )
        assert len(colours) == 2
        listed = page.inner_text(f"#job-list li[data-job='{job_id}']")
        assert "succeeded" in listed and "2 speakers" in listed and "0:3" in listed

        # ---- the player: the decoded audio, seekable (206); a click on a word seeks there
        status = page.evaluate(
            "async (url) => (await fetch(url, {headers: {Range: 'bytes=0-99'}})).status",
            f"/v1/jobs/{job_id}/audio",
        )
        assert status == 206
        page.wait_for_function("() => document.getElementById('player').readyState >= 1")
        word = page.locator("#transcript .seg").nth(2).locator(".w").nth(1)
        start = float(word.get_attribute("data-start") or "nan")
        word.click()
        page.wait_for_function(
            "(t) => Math.abs(document.getElementById('player').currentTime - t) < 0.5", arg=start
        )
        page.evaluate("document.getElementById('player').pause()")
        page.wait_for_selector("#transcript .w.now")
        now_start = float(page.get_attribute("#transcript .w.now", "data-start") or "nan")
        assert abs(now_start - start) < 0.05, (now_start, start)
        assert page.locator("#transcript .seg.playing").count() == 1
        page.screenshot(path=str(screenshots / "page-transcript-laptop.png"), full_page=True)
        problems += axe_problems(page, "transcript")

        # ---- playback by the keyboard: a paragraph's time button plays from there
        second = page.locator("#transcript li.para .t").nth(1)
        first_line = page.locator("#transcript li.para").nth(1).locator(".seg").first
        para_start = float(first_line.get_attribute("data-start") or "nan")
        second.focus()
        page.keyboard.press("Enter")
        page.wait_for_function(
            "(t) => Math.abs(document.getElementById('player').currentTime - t) < 1.5",
            arg=para_start,
        )
        page.evaluate("document.getElementById('player').pause()")

        rename_with_consent(page)

        # ---- download the SRT: the corrected name is in the file
        s1_lines = page.locator("#transcript .seg[data-speaker=S1]").count()
        with page.expect_download() as download:
            page.click("#downloads a:text-is('SRT')")
        srt = Path(download.value.path()).read_text()
        assert download.value.suggested_filename == f"{job_id}.srt"
        assert srt.startswith("1\n00:00:")
        assert srt.count("Alice: ") == s1_lines and "Speaker 1" not in srt
        assert "Speaker 2: " in srt

        # ---- correct lines in place, give words to the other speaker, undo it all
        correct_and_undo(page, screenshots)
        page.click("#transcript .seg >> nth=1 >> button.edit")
        problems += axe_problems(page, "line editor")
        page.keyboard.press("Escape")
        give_words(page, screenshots)
        SAMPLE["job_id"] = job_id

        # ---- replay from diarize with the same speakers: only what must, re-runs. The
        # corrections re-embed the job for search meanwhile; a replay waits for that.
        page.click("#replay summary")
        page.select_option("#replay-stage", "diarize")
        assert page.input_value("#replay-speakers") == "2"
        replay_when_idle(page, job_id)
        # Alice's voiceprint is new, so identify (and merge after it) compute again;
        # transcribe does not read diarize, so it does not run at all.
        wait_for_states(
            page,
            {
                "decode": "succeeded",
                "diarize": "reused",
                "transcribe": "succeeded",
                "identify": "succeeded",
                "merge": "succeeded",
            },
        )
        page.wait_for_selector("#result #transcript li.para")
        assert page.inner_text("#speakers li[data-speaker=S1] .speaker-name") == "Alice"
        page.screenshot(path=str(screenshots / "page-replayed-laptop.png"), full_page=True)

        # ---- a phone's width: one column, nothing wider than the screen
        page.set_viewport_size(PHONE)
        page.wait_for_timeout(200)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than a phone"
        page.screenshot(path=str(screenshots / "page-transcript-phone.png"), full_page=True)
        problems += axe_problems(page, "phone")
        page.set_viewport_size(LAPTOP)

        # ---- a file that cannot be decoded: the stage and the reason, in plain words
        page.set_input_files("#file", str(empty_wav(tmp_path)))
        page.click("#submit")
        page.wait_for_url(re.compile(rf".*#/jobs/(?!{job_id})[0-9a-f-]{{36}}$"))
        bad_id = page.url.rsplit("/", 1)[1]
        page.wait_for_selector("#job-error", timeout=60_000)
        error = page.inner_text("#job-error")
        assert "The decode stage failed." in error
        assert re.search(r"no audio|empty|0 s", error, re.IGNORECASE), error
        assert stage_states(page)["decode"] == "failed"
        assert stage_states(page)["merge"] == "waiting"
        page.screenshot(path=str(screenshots / "page-failed-laptop.png"))
        problems += axe_problems(page, "failed job")
        page.set_viewport_size(PHONE)
        page.screenshot(path=str(screenshots / "page-failed-phone.png"), full_page=True)
        page.set_viewport_size(LAPTOP)

        # ---- delete the failed job from the list
        page.click(f"#job-list li[data-job='{bad_id}'] button.danger")
        page.wait_for_selector(f"#job-list li[data-job='{bad_id}']", state="detached")
        page.wait_for_selector("#job-placeholder")

        # ---- forget Alice's voice: the known voices are empty again
        page.click("#people-list li:has-text('Alice') button.danger")
        page.wait_for_selector("#people-empty")

        # ---- every button says what it does
        unnamed = page.eval_on_selector_all(
            "button",
            "bs => bs.filter(b => !(b.getAttribute('aria-label') || b.textContent.trim()))"
            ".map(b => b.outerHTML)",
        )
        assert unnamed == []
        assert problems == [], problems
        assert page_errors == [], page_errors
    except BaseException:
        page.screenshot(path=str(screenshots / "page-failure.png"), full_page=True)
        raise
    finally:
        context.close()


def test_search_opens_the_meeting_at_that_moment(
    page_system: LocalSystem, browser: Browser, screenshots: Path
) -> None:
    """Search across meetings for words of the uploaded one; a hit opens it at that moment.
    An empty query is refused with the server's reason."""
    if "job_id" not in SAMPLE:
        pytest.fail("the end-to-end page test before this one left no transcribed meeting")
    job_id = SAMPLE["job_id"]
    context = browser.new_context(viewport=LAPTOP, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(page_system.url + "/")
        page.click("#search-form button[type=submit]")  # empty: the server's 422, in words
        page.wait_for_selector("#search-status.bad")
        assert "empty" in page.inner_text("#search-status")
        # The passages are embedded after the result: poll until they are found.
        deadline = time.monotonic() + 120
        while True:
            page.fill("#search-q", "hello, I did not know you were there")
            page.press("#search-q", "Enter")
            page.wait_for_function(
                "() => !document.getElementById('search-status')"
                ".textContent.startsWith('Searching')"
            )
            if page.locator(f"#search-results li[data-job='{job_id}']").count():
                break
            assert time.monotonic() < deadline, page.inner_text("#search-status")
            page.wait_for_timeout(2000)
        hit = page.locator(f"#search-results li[data-job='{job_id}']").first
        at = float(hit.get_attribute("data-start") or "nan")
        page.screenshot(path=str(screenshots / "page-search-laptop.png"))
        hit.locator("a").click()
        page.wait_for_url(re.compile(rf".*#/jobs/{job_id}\?t=[\d.]+$"))
        page.wait_for_function(
            "(t) => Math.abs(document.getElementById('player')?.currentTime - t) < 0.5", arg=at
        )
        assert page.evaluate(
            "(t) => [...document.querySelectorAll('#transcript .seg')]"
            ".some(s => Number(s.dataset.start) <= t + 0.1)",
            at,
        )
    finally:
        context.close()
