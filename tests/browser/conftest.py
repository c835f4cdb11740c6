"""Browser fixtures: the shipped help center under a real uvicorn, driven by Debian's Chromium."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    ViewportSize,
    expect,
    sync_playwright,
)

from kb.build import build
from kb.config import Settings
from kb.web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CONTENT = ROOT / "content"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = ROOT / "test-artifacts"
VIEWPORT: ViewportSize = {"width": 1200, "height": 800}
STARTUP_SECONDS = 15.0
# Waits end as soon as the page is ready; the limit only matters on a loaded CI machine.
TIMEOUT_MS = 10_000
expect.set_options(timeout=TIMEOUT_MS)
FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


@pytest.fixture(scope="package")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The shipped content, built into a temporary index, served on a free port of 127.0.0.1."""
    root = tmp_path_factory.mktemp("browser-site")
    build(SHIPPED_CONTENT, root / "index")
    settings = Settings.from_env(
        {}, content_dir=SHIPPED_CONTENT, index_dir=root / "index", data_dir=root / "var"
    )
    app = create_app(settings, background=False)
    # Bound before the server starts: the port is ours, no race with another process.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("le serveur uvicorn des tests navigateur n'a pas démarré")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_SECONDS)
        sock.close()


# Package scope, not session: while Playwright's sync API runs, the main thread looks as if it
# were inside a running asyncio loop, and anyio.run() in the tests after these would refuse to start.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} absent : installez le paquet Debian « chromium »"
        if os.environ.get("KB_REQUIRE_BROWSER"):
            pytest.fail(f"KB_REQUIRE_BROWSER est défini mais {reason}")
        pytest.skip(reason)
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


def _context(browser: Browser, base_url: str, **options: Any) -> BrowserContext:
    context = browser.new_context(base_url=base_url, viewport=VIEWPORT, locale="fr-FR", **options)
    context.set_default_timeout(TIMEOUT_MS)
    return context


def _visit(request: pytest.FixtureRequest, context: BrowserContext) -> Iterator[Page]:
    page = context.new_page()
    yield page
    if request.node.stash.get(FAILED, False):  # what the browser showed when the test failed
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in request.node.name)
        page.screenshot(path=ARTIFACTS / "echecs" / f"{name}.png", full_page=True)
    context.close()


@pytest.fixture
def page(browser: Browser, base_url: str, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh visitor with JavaScript: own cookies, own CSRF token."""
    yield from _visit(request, _context(browser, base_url))


@pytest.fixture
def page_without_js(
    browser: Browser, base_url: str, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A fresh visitor whose browser runs no JavaScript at all."""
    yield from _visit(request, _context(browser, base_url, java_script_enabled=False))


@pytest.fixture(scope="package")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
