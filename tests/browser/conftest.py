"""A real Scribe (gateway + worker process) and a real Chromium driven by Playwright.

Chromium is Debian's (`apt-get install chromium chromium-driver`, as `.ci/run` does);
Playwright's own browser download is not used. Without either, the tests skip and say why.
The system gets its own database, Redis prefix and storage root, derived from the session
`settings` like the integration tests' system, so the two never see each other's jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import urllib.parse as up
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cli.local import LocalSystem
from core.settings import Settings, StorageSettings
from gateway.http.page import PAGE_DIR
from tests.databases import create_database, drop_database
from tests.support import delete_redis_prefix

if TYPE_CHECKING:
    from playwright.sync_api import Browser

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def chromium_path() -> str | None:
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def screenshots() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "page-failure.png").unlink(missing_ok=True)  # an earlier run's
    return ARTIFACTS


# Module scope, not session: Playwright's sync API keeps an event loop running in the main
# thread while it is open, which would break the asyncio tests that run after this module.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright import sync_api  # the test extra: a missing one fails, never skips

    executable = chromium_path()
    if executable is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium chromium-driver)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def off_loop(fn: Callable[[], object]) -> None:
    """Run `fn` in a thread of its own: Playwright's sync API keeps an event loop running
    in this one, where `asyncio.run` (ours, LocalSystem's) would refuse to start."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(fn).result()


def run_async(coro: Callable[[], Coroutine[object, object, None]]) -> None:
    off_loop(lambda: asyncio.run(coro()))


def page_built() -> None:
    """The page is web/'s static export (scripts/install.sh builds it when Node.js is there)."""
    if not (PAGE_DIR / "index.html").is_file():
        pytest.fail(
            "the page is not built (scripts/web.sh builds it; it needs Node.js 20.19+ and npm)",
            pytrace=False,
        )


def own_system(
    settings: Settings,
    pg_admin_dsn: str,
    tmp_path_factory: pytest.TempPathFactory,
    suffix: str,
    *,
    worker: bool,
    live: bool = False,
) -> Iterator[LocalSystem]:
    """A gateway (and a worker process, and with `live` a live worker) with a database,
    prefix and storage of their own."""
    assert settings.redis_url
    page_built()
    db_name = f"{settings.redis_prefix.replace('-', '_')}_{suffix}"
    run_async(lambda: create_database(pg_admin_dsn, db_name))
    data_dir = tmp_path_factory.mktemp(f"scribe-{suffix}")
    own = settings.model_copy(
        update={
            "data_dir": data_dir,
            "database_url": up.urlunsplit(up.urlsplit(pg_admin_dsn)._replace(path=f"/{db_name}")),
            "redis_prefix": f"{settings.redis_prefix}-{suffix}",
            "storage": StorageSettings(protocol="file", root=str(data_dir / "artifacts")),
        }
    )
    log = data_dir / "worker.log"
    local = LocalSystem(own, worker=worker, worker_log=log, live_worker=live)
    try:
        off_loop(local.start)
        yield local
    except BaseException:
        if log.exists():
            print("worker log (tail):\n" + "\n".join(log.read_text().splitlines()[-40:]))
        raise
    finally:
        procs = [w.proc for w in (local.worker, local.live_worker) if w is not None]
        try:
            off_loop(local.stop)
        finally:
            for proc in procs:  # a worker's process group is its own; end what is left
                if proc is None:
                    continue
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            run_async(lambda: drop_database(pg_admin_dsn, db_name))
            delete_redis_prefix(settings.redis_url, own.redis_prefix)


@pytest.fixture(scope="module")
def page_system(
    settings: Settings, pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalSystem]:
    """Gateway + one worker process with a database, prefix and storage of their own."""
    yield from own_system(settings, pg_admin_dsn, tmp_path_factory, "page", worker=True)


@pytest.fixture(scope="module")
def page_gateway(
    settings: Settings, pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalSystem]:
    """A gateway alone (jobs stored directly, no stage runs), its own database and prefix."""
    yield from own_system(settings, pg_admin_dsn, tmp_path_factory, "page_gw", worker=False)


@pytest.fixture(scope="session")
def speech_sample() -> Path:
    """pyannote.audio's 30 s two-speaker recording (installed with the worker extra)."""
    import importlib.util

    spec = importlib.util.find_spec("pyannote.audio")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("pyannote.audio is not installed (scripts/install.sh)", pytrace=False)
    sample = Path(next(iter(spec.submodule_search_locations))) / "sample" / "sample.wav"
    if not sample.exists():
        pytest.fail("pyannote.audio's sample.wav is not installed", pytrace=False)
    return sample


@pytest.fixture(scope="module")
def page_gateway_with_keys(
    settings: Settings, pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalSystem]:
    """A gateway alone with API keys on (auth on), its own database and prefix."""
    keyed = settings.model_copy(update={"auth": "on"})
    yield from own_system(keyed, pg_admin_dsn, tmp_path_factory, "page_keys", worker=False)
