"""The transcript editor in the browser: correct lines (double-click, Enter, keyboard), give
some of a line's words to another speaker, undo each correction; the transcript and the
TXT read as before at the end."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

LINE_TEXT = """(i) => { const s = document.querySelector(`#transcript .seg[data-line="${i}"]`);
  if (!s) return null; const c = s.cloneNode(true);
  c.querySelectorAll('button').forEach(b => b.remove()); return c.textContent.trim(); }"""


def download_txt(page: Page) -> str:
    with page.expect_download() as download:
        page.click("#downloads a:text-is('TXT')")
    return Path(download.value.path()).read_text()


def focused(page: Page, selector: str) -> bool:
    return bool(page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector))


def line(i: int) -> str:
    return f"#transcript .seg[data-line='{i}']"


def line_text(page: Page, i: int) -> str | None:
    text: str | None = page.evaluate(LINE_TEXT, i)
    return text


def lines(page: Page, attr: str) -> list[str]:
    found: list[str] = page.eval_on_selector_all(
        "#transcript .seg", f"ss => ss.map(s => s.dataset.{attr})"
    )
    return found


def correct_and_undo(page: Page, screenshots: Path) -> None:
    """Fix a whole line's text (double-click, Enter), one word of another (its timings
    kept), give a third line to Alice; the transcript and the TXT follow; undo each, the
    oldest first, the first by the keyboard. Speaker 1 is Alice already; the rename stays."""
    txt_before = download_txt(page)
    transcript_before = page.inner_text("#transcript")
    assert page.locator("#corrections li").count() == 1
    assert "Speaker 1 named “Alice”" in page.inner_text("#corrections")
    word_counts = page.eval_on_selector_all(
        "#transcript .seg", "ss => ss.map(s => s.querySelectorAll('.w').length)"
    )
    speakers = lines(page, "speaker")
    first_name = page.inner_text("#transcript li.para[data-para='0'] .who")
    one_word = next(i for i in range(1, len(word_counts)) if word_counts[i] >= 2)
    moved = next(i for i, s in enumerate(speakers) if s == "S2" and i not in (0, one_word))

    # By the keyboard: the line's ✎ button, Enter; Escape: nothing changes, focus is back.
    page.focus(f"{line(0)} button.edit")
    page.keyboard.press("Enter")
    page.wait_for_selector("#edit-text-0")
    assert focused(page, "#edit-text-0")
    page.keyboard.type(" and more")
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.activeElement?.matches('button.edit')")
    assert focused(page, f"{line(0)} button.edit")
    assert page.inner_text("#transcript") == transcript_before

    # A whole line: double-click its text, type, Enter.
    page.dblclick(f"{line(0)} .w >> nth=0")
    page.wait_for_selector("#edit-text-0")
    assert focused(page, "#edit-text-0")
    assert page.get_attribute("label[for=edit-text-0]", "class") == "sr-only"
    page.fill("#edit-text-0", "Scribe corrected this line.")
    page.screenshot(path=str(screenshots / "page-editing-laptop.png"))
    page.press("#edit-text-0", "Enter")
    page.wait_for_function(f"() => ({LINE_TEXT})(0) === 'Scribe corrected this line.'")
    assert "Saved: the line at" in page.inner_text("#correction-status")
    page.wait_for_function("() => document.activeElement?.matches('button.edit')")
    assert focused(page, f"{line(0)} button.edit")

    # One word of another line: the line keeps its words, so the player still follows it.
    page.click(f"{line(one_word)} button.edit")
    before = page.input_value(f"#edit-text-{one_word}")
    page.fill(f"#edit-text-{one_word}", before.rsplit(" ", 1)[0] + " zebras.")
    page.click(f"{line(one_word)} form button[type=submit]")
    fixed = page.locator(f"{line(one_word)} .w")
    fixed.last.filter(has_text="zebras.").wait_for()
    assert fixed.count() == word_counts[one_word]

    # Who said a line: the speakers of the job in a select.
    page.click(f"{line(moved)} button.edit")
    options = page.locator(f"#edit-speaker-{moved} option").all_inner_texts()
    assert options[:2] == ["Alice", "Speaker 2"], options
    page.select_option(f"#edit-speaker-{moved}", "S1")
    page.click(f"{line(moved)} form button[type=submit]")
    page.wait_for_selector(f"{line(moved)}[data-speaker=S1]")
    assert "is said by Alice" in page.inner_text("#correction-status")
    # Consecutive lines of one speaker read as one paragraph, so Alice's line joined hers.
    paras = page.eval_on_selector_all("#transcript li.para", "ps => ps.map(p => p.dataset.speaker)")
    assert all(a != b for a, b in zip(paras, paras[1:], strict=False)), paras

    kinds = page.eval_on_selector_all("#corrections li", "lis => lis.map(li => li.dataset.kind)")
    assert kinds == ["reassign", "fix_text", "fix_text", "rename_speaker"]  # newest first
    txt = download_txt(page)
    assert f"{first_name}: Scribe corrected this line." in txt and "zebras." in txt
    assert txt.count("Alice: ") == txt_before.count("Alice: ") + 1
    assert txt.count("Speaker 2: ") == txt_before.count("Speaker 2: ") - 1
    page.screenshot(path=str(screenshots / "page-corrected-laptop.png"), full_page=True)

    # Undo the oldest of the three first, by the keyboard: the two after it still apply.
    page.focus("#corrections li:has-text('Scribe corrected this line.') button.undo")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#corrections li').length === 3")
    assert "Undone: " in page.inner_text("#correction-status")
    page.wait_for_function("() => document.activeElement?.matches('#corrections button.undo')")
    assert "Scribe corrected" not in page.inner_text("#transcript")
    assert "zebras." in page.inner_text("#transcript")
    for kind, left in (("reassign", 2), ("fix_text", 1)):
        page.click(f"#corrections li[data-kind={kind}] button.undo")
        page.wait_for_function(
            "(n) => document.querySelectorAll('#corrections li').length === n", arg=left
        )
    assert page.inner_text("#transcript") == transcript_before
    assert download_txt(page) == txt_before


def give_words(page: Page, screenshots: Path) -> None:
    """Give the 2nd and 3rd words of a line of three or more to the other speaker: the
    line splits there, the words keep their timings; undone, it reads as before."""
    transcript_before = page.inner_text("#transcript")
    counts = page.eval_on_selector_all(
        "#transcript .seg", "ss => ss.map(s => s.querySelectorAll('.w').length)"
    )
    speakers = lines(page, "speaker")
    i = next(k for k, n in enumerate(counts) if n >= 4)
    other = "S2" if speakers[i] == "S1" else "S1"
    words = page.locator(f"{line(i)} .w").all_inner_texts()
    page.click(f"{line(i)} button.edit")
    page.click(f"{line(i)} button.pick[data-word='2']")
    page.click(f"{line(i)} button.pick[data-word='1']")
    pressed = page.eval_on_selector_all(
        f"{line(i)} button.pick", "bs => bs.map(b => b.getAttribute('aria-pressed'))"
    )
    assert pressed[:4] == ["false", "true", "true", "false"], pressed
    page.select_option(f"#give-speaker-{i}", other)
    page.screenshot(path=str(screenshots / "page-give-words-laptop.png"))
    page.click(f"{line(i)} button.give")
    page.wait_for_function(
        "(n) => document.querySelectorAll('#transcript .seg').length === n", arg=len(counts) + 2
    )
    assert "2 words given to" in page.inner_text("#correction-status")
    assert lines(page, "speaker")[i : i + 3] == [speakers[i], other, speakers[i]]
    assert line_text(page, i + 1) == " ".join(words[1:3])
    assert page.locator(f"{line(i + 1)} .w").count() == 2  # the words kept their timings
    described = page.inner_text("#corrections li[data-kind=reassign] .what")
    assert described.startswith("Words 2–3 of the line at"), described
    page.click("#corrections li[data-kind=reassign] button.undo")
    page.wait_for_function(
        "(n) => document.querySelectorAll('#transcript .seg').length === n", arg=len(counts)
    )
    assert page.inner_text("#transcript") == transcript_before
