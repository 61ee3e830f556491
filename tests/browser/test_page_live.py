"""A live meeting from the page, in a real Chromium whose microphone plays a two-speaker
recording (`--use-file-for-fake-audio-capture`): "Start live", captions with two speakers
on the job's page before the recording has finished playing, "Stop", then the transcript
the whole pipeline made of the recording. A real gateway, stage worker and live worker
(Whisper base, CAM++) run behind it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.local import LocalSystem
from core.settings import Settings
from tests.browser.conftest import CHROMIUM_ARGS, chromium_path, own_system

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

VOICES = ("librispeech/1998/1998-15444-0000.flac", "librispeech/1688/1688-142285-0000.flac")


@pytest.fixture(scope="module")
def meeting_wav(audio_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two voices one after the other (about 28 s), then 60 s of silence, so the fake
    microphone's loop does not start the meeting again during the test."""
    from imageio_ffmpeg import get_ffmpeg_exe

    out = tmp_path_factory.mktemp("live-page") / "meeting.wav"
    inputs = [arg for v in VOICES for arg in ("-i", str(audio_dir / v))]
    graph = "[0:a][1:a]concat=n=2:v=0:a=1,apad=pad_dur=60[a]"
    subprocess.run(
        [get_ffmpeg_exe(), "-nostdin", "-v", "error", *inputs, "-filter_complex", graph,
         "-map", "[a]", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", str(out)],
        check=True,
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def live_system(
    settings: Settings, pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalSystem]:
    yield from own_system(
        settings, pg_admin_dsn, tmp_path_factory, "page_live", worker=True, live=True
    )


def test_a_live_meeting_from_the_page(live_system: LocalSystem, meeting_wav: Path) -> None:
    from playwright import sync_api

    executable = chromium_path()
    if executable is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium chromium-driver)")
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={meeting_wav}",
    ]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=args)
        try:
            page = browser.new_page()
            page.goto(live_system.url)
            page.locator("#live-start").click()
            page.locator("#live-stop").wait_for()
            # Captions with final words, grouped by speaker, while the recording plays: the
            # second voice starts about 13 s in, so two speakers means live, not replayed.
            captions = page.locator("#live-captions .caption[data-speaker]")
            captions.first.wait_for(timeout=120_000)
            page.wait_for_function(
                "() => new Set([...document.querySelectorAll("
                "'#live-captions .caption[data-speaker]')].map(e => e.dataset.speaker)"
                ".filter(Boolean)).size >= 2",
                timeout=180_000,
            )
            status = page.locator("#live-status").inner_text()
            assert "recorded" in status  # still recording: the meeting has not ended
            # Words, not placeholders: every caption holds some, and together they read
            # as speech (a stretch is cut at a pause, so one caption may hold one word).
            texts = captions.locator(".caption-text").all_inner_texts()
            assert texts and all(any(c.isalpha() for c in t) for t in texts), texts
            assert len(" ".join(texts).split()) >= 3, texts
            page.locator("#live-stop").click()
            page.locator("#job-detail[data-status='succeeded']").wait_for(timeout=300_000)
            page.locator("#live-start").wait_for()  # the panel is ready for the next one
            transcript = page.locator("#job-detail").inner_text()
            assert len(transcript.split()) > 20
        finally:
            browser.close()
