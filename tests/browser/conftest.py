"""Browser tests: Debian's chromium driven by Playwright, against real web processes, NATS and PostgreSQL.

Playwright never downloads a browser here: it launches ``/usr/bin/chromium``
(``make install`` / ``make test`` install it with apt-get when it is missing).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from tests.pipeline import BASE_DIR, MANAGE, Pipeline

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = BASE_DIR / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def static_files() -> list[str]:
    """Gather the static files once; return granian's options that serve them, as the devstack does."""
    subprocess.run([sys.executable, MANAGE, "collectstatic", "--noinput", "-v", "0"], cwd=BASE_DIR, check=True)
    return ["--static-path-route", "/static", "--static-path-mount", str(settings.STATIC_ROOT)]


# Module-scoped: while Playwright's sync API is open, this thread runs its event loop, which Django's
# ORM refuses outside these tests (SynchronousOnlyOperation); closing it ends that loop.
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `make install` (apt-get install -y chromium); Playwright never downloads one"
        )
    with sync_playwright() as playwright:
        # As root (CI), chromium refuses to start with its sandbox.
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls of a test are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


PHONE = {"width": 360, "height": 780}


@pytest.fixture
def contexts(browser):
    """Open browser contexts (separate cookies: separate shoppers), closed after the test; phone=True: 360 px."""
    opened = []

    def new(phone: bool = False):
        viewport = PHONE if phone else {"width": 1280, "height": 900}
        context = browser.new_context(viewport=viewport, device_scale_factor=2 if phone else 1, is_mobile=phone)
        context.set_default_timeout(15_000)
        opened.append(context)
        return context.new_page()

    yield new
    for context in opened:
        context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        if not old.name.startswith("ops-loadtest-"):  # make ops-screenshots' pictures are not the suite's
            old.unlink()
    print(f"\nscreenshots: {SCREENSHOTS}")
    return SCREENSHOTS


@dataclass
class Shop:
    """A running storefront: WSGI pages whose websockets go to an ASGI process, and the pipeline behind."""

    web: str
    live: str
    pipeline: Pipeline


@pytest.fixture
def shop(pipeline, static_files) -> Iterator[Shop]:
    pipeline.start()
    live = pipeline.live(1, *static_files)
    web = pipeline.web(2, *static_files, LIVE_WS_PORT=live.rsplit(":", 1)[1])
    yield Shop(web=web, live=live, pipeline=pipeline)


def pytest_terminal_summary(terminalreporter) -> None:
    """Say where the screenshots are, in the log CI keeps."""
    if SCREENSHOTS.exists() and any(SCREENSHOTS.iterdir()):
        shots = ", ".join(sorted(p.name for p in SCREENSHOTS.iterdir()))
        terminalreporter.write_line(f"browser screenshots in {SCREENSHOTS}: {shots}")
