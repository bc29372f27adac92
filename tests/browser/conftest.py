"""Fixtures for the dashboard tests: one live server and Debian's Chromium via Playwright.

The server starts on an empty store, so it trains the default model itself (as
``seed_store`` does), and the training test may add versions to it. Every request
the browser makes to a host other than that server is aborted and fails the test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.service.server import ROOT, Server, start_server
from tests.system import apt_install

ARTIFACTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of the dashboard tests' own, with the default model trained."""
    store = tmp_path_factory.mktemp("dashboard") / "models"
    server = start_server(store, tmp_path_factory.mktemp("dashboard-logs"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium (installed with apt-get when missing; never downloaded).

    Module scope, not session: Playwright's sync API keeps an event loop running
    while it is open, and later tests that call ``asyncio.run`` must not see it.
    """
    apt_install("chromium", "chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@dataclass
class Watched:
    """A page whose console errors, failed requests and foreign requests are recorded."""

    page: Any
    base: str
    console_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    http_errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def goto(self, path: str) -> None:
        self.page.goto(self.base + path)

    def assert_clean(self) -> None:
        assert self.foreign == [], f"requests to other hosts: {self.foreign}"
        assert self.console_errors == [], f"console errors: {self.console_errors}"
        assert self.failed == [], f"failed requests: {self.failed}"
        assert self.http_errors == [], f"error answers: {self.http_errors}"

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def watched(browser: Any, live: Server) -> Iterator[Watched]:
    """A fresh browser context at 1280 px on the live server; other hosts are blocked."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    w = Watched(page, live.url)

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if url == live.url or url.startswith(live.url + "/"):
            request_route.continue_()
        else:
            w.foreign.append(url)
            request_route.abort()

    context.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and w.console_errors.append(m.text))
    page.on("pageerror", lambda e: w.console_errors.append(f"uncaught: {e}"))

    def failed(request: Any) -> None:
        # The page closes a job's event stream itself on its `end` event: not a failure.
        if not (request.url.endswith("/events") and "ERR_ABORTED" in (request.failure or "")):
            w.failed.append(f"{request.url} {request.failure}")

    page.on("requestfailed", failed)
    page.on("response", lambda r: r.status >= 400 and w.http_errors.append(f"{r.status} {r.url}"))
    yield w
    context.close()
    assert w.foreign == [], f"requests to other hosts: {w.foreign}"
