"""The page in a real browser against a real Scribe: upload through the file input, watch
the five stages over SSE (across a reload), read the transcript, follow it with the
player, rename a speaker and remember the voice, download the SRT, correct a line's text and
who said it then undo that, replay a stage, see a failed job explained, delete it.
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

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow

STAGES = DEFAULT_GRAPH.names
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
JOB_TIMEOUT_MS = 420_000  # generous: a busy CI machine is much slower than an idle one


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
            pytest.fail(f"stage {failed[0]} failed: {page.inner_text('#job-error')}")
        page.wait_for_timeout(250)
    pytest.fail(f"stages did not reach {expected}; the page shows {stage_states(page)}")


def empty_wav(tmp: Path) -> Path:
    """A WAV header with no samples: accepted as media, refused by decode."""
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 0)
    path = tmp / "empty.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def download_txt(page: Page) -> str:
    with page.expect_download() as download:
        page.click("#downloads a:text-is('TXT')")
    return Path(download.value.path()).read_text()


def focused(page: Page, selector: str) -> bool:
    return bool(page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector))


def correct_and_undo(page: Page, screenshots: Path) -> None:
    """Fix a whole line's text (double-click, Enter), one word of another (its timings
    kept), give a third line to Alice; the transcript and the TXT follow; undo each, the
    oldest first, and both read as before. Speaker 1 is Alice already; the rename stays."""
    lines = page.locator("#transcript li")
    txt_before = download_txt(page)
    transcript_before = page.inner_text("#transcript")
    assert page.locator("#corrections li").count() == 1
    assert "Speaker 1 named “Alice”" in page.inner_text("#corrections")
    word_counts = page.eval_on_selector_all(
        "#transcript li", "lis => lis.map(li => li.querySelectorAll('.w').length)"
    )
    speakers = page.eval_on_selector_all(
        "#transcript li", "lis => lis.map(li => li.dataset.speaker)"
    )
    first_name = page.inner_text("#transcript li[data-index='0'] .who")
    one_word = next(i for i in range(1, len(word_counts)) if word_counts[i] >= 2)
    moved = next(i for i, s in enumerate(speakers) if s == "S2" and i not in (0, one_word))

    # Edit, then Escape: nothing changes and the focus is back on the line's Edit button.
    lines.nth(0).locator("button.edit").click()
    assert focused(page, "#edit-text-0")
    page.keyboard.type(" and more")
    page.keyboard.press("Escape")
    assert focused(page, "#transcript li[data-index='0'] button.edit")
    assert page.inner_text("#transcript") == transcript_before

    # A whole line: double-click its text, type, Enter.
    page.dblclick("#transcript li[data-index='0'] .text")
    assert focused(page, "#edit-text-0")
    assert page.get_attribute("label[for=edit-text-0]", "class") == "sr-only"
    page.fill("#edit-text-0", "Scribe corrected this line.")
    page.screenshot(path=str(screenshots / "page-editing-laptop.png"))
    page.press("#edit-text-0", "Enter")
    page.wait_for_selector(
        "#transcript li[data-index='0'] .text:text-is('Scribe corrected this line.')"
    )
    assert "Saved: the line at" in page.inner_text("#correction-status")
    assert focused(page, "#transcript li[data-index='0'] button.edit")

    # One word of another line: the line keeps its words, so the player still follows it.
    page.click(f"#transcript li[data-index='{one_word}'] button.edit")
    before = page.input_value(f"#edit-text-{one_word}")
    page.fill(f"#edit-text-{one_word}", before.rsplit(" ", 1)[0] + " zebras.")
    page.click(f"#transcript li[data-index='{one_word}'] button[type=submit]")
    fixed = page.locator(f"#transcript li[data-index='{one_word}'] .w")
    fixed.last.filter(has_text="zebras.").wait_for()
    assert fixed.count() == word_counts[one_word]

    # Who said a line: the speakers of the job in a select.
    page.click(f"#transcript li[data-index='{moved}'] button.edit")
    options = page.locator(f"#edit-speaker-{moved} option").all_inner_texts()
    assert options[:2] == ["Alice", "Speaker 2"], options
    page.select_option(f"#edit-speaker-{moved}", "S1")
    page.click(f"#transcript li[data-index='{moved}'] button[type=submit]")
    page.wait_for_selector(f"#transcript li[data-index='{moved}'][data-speaker=S1]")
    assert page.inner_text(f"#transcript li[data-index='{moved}'] .who") == "Alice"
    assert "is said by Alice" in page.inner_text("#correction-status")

    kinds = page.eval_on_selector_all("#corrections li", "lis => lis.map(li => li.dataset.kind)")
    assert kinds == ["reassign", "fix_text", "fix_text", "rename_speaker"]  # newest first
    txt = download_txt(page)
    assert f"{first_name}: Scribe corrected this line." in txt and "zebras." in txt
    assert txt.count("Alice: ") == txt_before.count("Alice: ") + 1
    assert txt.count("Speaker 2: ") == txt_before.count("Speaker 2: ") - 1
    page.screenshot(path=str(screenshots / "page-corrected-laptop.png"), full_page=True)

    # Undo the oldest of the three first: the two after it still apply.
    page.click("#corrections li:has-text('Scribe corrected this line.') button.undo")
    page.wait_for_function("() => document.querySelectorAll('#corrections li').length === 3")
    assert "Undone: " in page.inner_text("#correction-status")
    assert focused(page, "#corrections button.undo")
    assert "Scribe corrected" not in page.inner_text("#transcript")
    assert "zebras." in page.inner_text("#transcript")
    for kind, left in (("reassign", 2), ("fix_text", 1)):
        page.click(f"#corrections li[data-kind={kind}] button.undo")
        page.wait_for_function(
            "(n) => document.querySelectorAll('#corrections li').length === n", arg=left
        )
    assert page.inner_text("#transcript") == transcript_before
    assert download_txt(page) == txt_before


def test_page_end_to_end(
    page_system: LocalSystem,  # before the browser: the session's database fixtures use
    browser: Browser,  # asyncio.run, which cannot start inside Playwright's running loop
    speech_sample: Path,
    screenshots: Path,
    tmp_path: Path,
) -> None:
    context = browser.new_context(viewport=LAPTOP, accept_downloads=True)
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    page.on("dialog", lambda d: d.accept())
    page.set_default_timeout(20_000)
    try:
        page.goto(page_system.url + "/")
        assert page.title() == "Scribe"
        page.wait_for_selector("#jobs-empty:not([hidden])")
        page.screenshot(path=str(screenshots / "page-empty-laptop.png"))

        # ---- upload through the file input, two speakers asked for in the options
        page.set_input_files("#file", str(speech_sample))
        assert "sample.wav" in page.inner_text("#drop-text")
        page.click("summary:text('Options')")
        page.fill("input[name=num_speakers]", "2")
        page.click("#submit")
        page.wait_for_url(re.compile(r".*#/jobs/[0-9a-f-]{36}$"))
        job_id = page.url.rsplit("/", 1)[1]
        assert "Uploaded sample.wav" in page.inner_text("#upload-status")
        page.wait_for_selector(f"#job-list li[data-job='{job_id}']")

        # ---- live progress; a reload mid-way picks up where it was, not from zero
        page.wait_for_function(
            "() => ['running', 'succeeded'].includes("
            "document.querySelector('#stages li[data-stage=diarize]').dataset.state)",
            timeout=JOB_TIMEOUT_MS,
        )
        assert stage_states(page)["decode"] == "succeeded"
        page.screenshot(path=str(screenshots / "page-progress-laptop.png"))
        page.reload()
        page.wait_for_selector("#job-detail:not([hidden])")
        page.wait_for_function(
            "() => document.querySelector('#stages li[data-stage=decode]').dataset.state"
            " === 'succeeded'"
        )
        wait_for_states(page, dict.fromkeys(STAGES, "succeeded"))
        for s in STAGES:
            assert re.fullmatch(
                r"done · (< 0\.1 s|[\d.]+ s|\d+:\d\d)",
                page.inner_text(f"#stages li[data-stage={s}] .stage-state"),
            )
        assert page.get_attribute("#stage-announcer", "aria-live") == "polite"

        # ---- the transcript: two speakers, text, colours, timestamps
        page.wait_for_selector("#result:not([hidden]) #transcript li")
        assert page.locator("#speakers li").count() == 2
        labels = page.eval_on_selector_all(
            "#transcript li", "lis => [...new Set(lis.map(li => li.dataset.speaker))]"
        )
        assert sorted(labels) == ["S1", "S2"]
        text = page.inner_text("#transcript")
        assert len(re.findall(r"[A-Za-z]{2,}", text)) >= 20, text
        assert "Speaker 1" in text and "Speaker 2" in text
        assert re.match(r"\d+:\d\d", page.inner_text("#transcript li .t"))
        colours = page.eval_on_selector_all(
            "#transcript li", "lis => [...new Set(lis.map(li => li.style.getPropertyValue('--c')))]"
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
        word = page.locator("#transcript li").nth(2).locator(".w").nth(1)
        start = float(word.get_attribute("data-start") or "nan")
        word.click()
        page.wait_for_function(
            "(t) => Math.abs(document.getElementById('player').currentTime - t) < 0.5", arg=start
        )
        page.evaluate("document.getElementById('player').pause()")
        page.wait_for_selector("#transcript .w.now")
        now_start = float(page.get_attribute("#transcript .w.now", "data-start") or "nan")
        assert abs(now_start - start) < 0.05, (now_start, start)
        assert page.locator("#transcript li.playing").count() == 1
        page.screenshot(path=str(screenshots / "page-transcript-laptop.png"), full_page=True)

        # ---- rename S1 to Alice and remember the voice: the name shows everywhere
        s1_segments = page.locator("#transcript li[data-speaker=S1]").count()
        page.click("#speakers li[data-speaker=S1] button.rename")
        page.fill("#rename-S1", "Alice")
        page.check("#speakers li[data-speaker=S1] input[name=remember]")
        page.click("#speakers li[data-speaker=S1] button[type=submit]")
        page.wait_for_function(
            "() => document.querySelector('#speakers li[data-speaker=S1] .speaker-name')"
            "?.textContent === 'Alice'"
        )
        whos = page.locator("#transcript li[data-speaker=S1] .who").all_inner_texts()
        assert whos == ["Alice"] * s1_segments
        assert "Speaker 1" not in page.inner_text("#transcript")
        assert "Speaker 1" not in page.inner_text("#speakers")
        assert "Speaker 1 is now Alice" in page.inner_text("#speaker-status")
        page.wait_for_selector("#people-list li:has-text('Alice')")
        page.wait_for_selector(f"#job-list li[data-job='{job_id}']:has-text('Alice')")

        # ---- download the SRT: the corrected name is in the file
        with page.expect_download() as download:
            page.click("#downloads a:text-is('SRT')")
        srt = Path(download.value.path()).read_text()
        assert download.value.suggested_filename == f"{job_id}.srt"
        assert srt.startswith("1\n00:00:")
        assert srt.count("Alice: ") == s1_segments and "Speaker 1" not in srt
        assert "Speaker 2: " in srt

        # ---- correct lines in place, see it in the transcript and the TXT, undo it all
        correct_and_undo(page, screenshots)

        # ---- replay from diarize with the same speakers: only what must, re-runs
        page.click("#replay summary")
        page.select_option("#replay-stage", "diarize")
        assert page.input_value("#replay-speakers") == "2"
        page.click("#replay-form button[type=submit]")
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
        page.wait_for_selector("#result:not([hidden]) #transcript li")
        assert page.inner_text("#speakers li[data-speaker=S1] .speaker-name") == "Alice"
        page.screenshot(path=str(screenshots / "page-replayed-laptop.png"), full_page=True)

        # ---- a phone's width: one column, nothing wider than the screen
        page.set_viewport_size(PHONE)
        page.wait_for_timeout(200)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than a phone"
        page.screenshot(path=str(screenshots / "page-transcript-phone.png"), full_page=True)
        page.set_viewport_size(LAPTOP)

        # ---- a file that cannot be decoded: the stage and the reason, in plain words
        page.set_input_files("#file", str(empty_wav(tmp_path)))
        page.click("#submit")
        page.wait_for_url(re.compile(rf".*#/jobs/(?!{job_id})[0-9a-f-]{{36}}$"))
        bad_id = page.url.rsplit("/", 1)[1]
        page.wait_for_selector("#job-error:not([hidden])", timeout=60_000)
        error = page.inner_text("#job-error")
        assert "The decode stage failed." in error
        assert re.search(r"no audio|empty|0 s", error, re.IGNORECASE), error
        assert stage_states(page)["decode"] == "failed"
        assert stage_states(page)["merge"] == "waiting"
        page.screenshot(path=str(screenshots / "page-failed-laptop.png"))
        page.set_viewport_size(PHONE)
        page.screenshot(path=str(screenshots / "page-failed-phone.png"), full_page=True)
        page.set_viewport_size(LAPTOP)

        # ---- delete the failed job from the list
        page.click(f"#job-list li[data-job='{bad_id}'] button.danger")
        page.wait_for_selector(f"#job-list li[data-job='{bad_id}']", state="detached")
        page.wait_for_selector("#job-placeholder:not([hidden])")

        # ---- keyboard: every button says what it does
        unnamed = page.eval_on_selector_all(
            "button",
            "bs => bs.filter(b => !(b.getAttribute('aria-label') || b.textContent.trim()))"
            ".map(b => b.outerHTML)",
        )
        assert unnamed == []
        assert page_errors == [], page_errors
    except BaseException:
        page.screenshot(path=str(screenshots / "page-failure.png"), full_page=True)
        raise
    finally:
        context.close()
