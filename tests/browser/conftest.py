"""Browser fixtures: the shipped help center under a real uvicorn, driven by Debian's Chromium."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from axe_playwright_python.sync_playwright import Axe
from conftest import PASSWORD
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    ViewportSize,
    expect,
    sync_playwright,
)
from starlette.applications import Starlette

from kb.config import Settings
from kb.helpdesk import accounts
from kb.helpdesk.accounts import Account
from kb.knowledge.build import build
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


@dataclass
class Server:
    """A help center under a real uvicorn: its address, its app (database, settings) and mail."""

    url: str
    app: Starlette

    @property
    def settings(self) -> Settings:
        settings: Settings = self.app.state.services.settings
        return settings

    def outbox(self) -> list[EmailMessage]:
        """What the server has sent, oldest first: .eml files in the data dir's outbox, once
        its mail sender (in the background when serving for real) has delivered the queue."""
        self.app.state.services.mail_sender.deliver()
        folder = self.settings.data_dir / "outbox"
        return [
            message_from_bytes(p.read_bytes(), policy=email_policy.default)  # type: ignore[misc]
            for p in sorted(folder.glob("*.eml"))
        ]

    def link_in_last_mail(self) -> str:
        """The address the last message sent asks to follow, as the recipient would click it: its
        last link (an answer's own text, quoted above it, may hold others)."""
        body = self.outbox()[-1].get_body(("plain",)).get_content()  # type: ignore[union-attr]
        found = re.findall(r"https?://\S+", body)
        assert found, f"aucun lien dans le dernier e-mail :\n{body}"
        return str(found[-1])

    def establishment(self, uai: str = "0750654D", email: str = "marie@example.fr") -> Account:
        """An activated establishment account: Marie Curie of the Lycée Louis-le-Grand."""
        account, _ = accounts.save(
            self.app.state.services.engine, role="etablissement", login=uai,
            establishment="Lycée Louis-le-Grand", first_name="Marie", last_name="Curie",
            email=email,
        )  # fmt: skip
        accounts.set_password(self.app.state.services.engine, account, PASSWORD)
        return account

    def agent(self, email: str = "sam@cpro.fr") -> Account:
        """An activated support agent, who logs in with an e-mail address."""
        account, _ = accounts.save(
            self.app.state.services.engine, role="agent", login=email, establishment="",
            first_name="Sam", last_name="Support", email=email,
        )  # fmt: skip
        accounts.set_password(self.app.state.services.engine, account, PASSWORD)
        return account

    def log_in(self, page: Page, login: str) -> None:
        """Through the login page, as a user would, until the banner shows who is logged in."""
        page.goto(f"{self.url}/connexion")
        page.get_by_label("Code UAI de l'établissement").fill(login)
        page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Se connecter").click()
        expect(page.get_by_role("button", name="Déconnexion")).to_be_visible()


@contextlib.contextmanager
def serving(settings: Callable[[str], Settings]) -> Iterator[Server]:
    """Serves create_app(settings(url)) on a free port of 127.0.0.1 until the block ends."""
    # Bound before the server starts: the port is ours, no race with another process; and the
    # settings know the address, so the links in e-mails point at this server.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(settings(url), background=False)
    # A page left open on a stream (the preview's events) must not hold the suite at shutdown.
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("le serveur uvicorn des tests navigateur n'a pas démarré")
        time.sleep(0.02)
    try:
        yield Server(url, app)
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_SECONDS)
        sock.close()


@pytest.fixture(scope="package")
def shipped_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped content, built once; servers only read it."""
    index = tmp_path_factory.mktemp("browser-index")
    build(SHIPPED_CONTENT, index)
    return index


@pytest.fixture(scope="package")
def base_url(tmp_path_factory: pytest.TempPathFactory, shipped_index: Path) -> Iterator[str]:
    """The shipped content, served on a free port of 127.0.0.1, for anonymous visitors."""
    data = tmp_path_factory.mktemp("browser-site")
    with serving(
        lambda url: Settings.from_env(
            {}, content_dir=SHIPPED_CONTENT, index_dir=shipped_index, data_dir=data, base_url=url
        )
    ) as server:
        yield server.url


@pytest.fixture
def make_server(
    tmp_path_factory: pytest.TempPathFactory, shipped_index: Path
) -> Iterator[Callable[..., Server]]:
    """Servers over the shipped content, each with its own empty data dir (database, outbox)."""
    with contextlib.ExitStack() as stack:

        def make(**overrides: Any) -> Server:
            data = tmp_path_factory.mktemp("browser-data")

            def settings(url: str) -> Settings:
                return Settings.from_env(
                    {}, content_dir=SHIPPED_CONTENT, index_dir=shipped_index, data_dir=data,
                    base_url=url, **overrides,
                )  # fmt: skip

            return stack.enter_context(serving(settings))

        yield make


@pytest.fixture
def helpdesk(make_server: Callable[..., Server]) -> Server:
    """A help center with a fresh database: accounts, tickets and mail of this test only."""
    return make_server()


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


def _visit(
    request: pytest.FixtureRequest, context: BrowserContext, suffix: str = ""
) -> Iterator[Page]:
    page = context.new_page()
    yield page
    if request.node.stash.get(FAILED, False):  # what the browser showed when the test failed
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in request.node.name)
        page.screenshot(path=ARTIFACTS / "echecs" / f"{name}{suffix}.png", full_page=True)
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


@pytest.fixture
def visit(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[..., Page]]:
    """Pages of their own (own cookies) on a given server: visit(server.url, **context options)."""
    visits: list[Iterator[Page]] = []

    def open_page(url: str, **options: Any) -> Page:
        suffix = f"-{len(visits) + 1}" if visits else ""  # each visitor's screen, on failure
        pages = _visit(request, _context(browser, url, **options), suffix)
        visits.append(pages)
        return next(pages)

    yield open_page
    for pages in reversed(visits):
        next(pages, None)


@pytest.fixture(scope="package")
def axe() -> Callable[[Page], str]:
    """axe-core's violations on the page as it is now, one line each: empty when there are none."""
    checker = Axe()

    def violations(page: Page) -> str:
        lines = []
        for v in checker.run(page).response["violations"]:
            lines.append(f"{v['id']} ({v['impact']}) : {v['help']}")
            for node in v["nodes"]:
                target = ", ".join(map(str, node["target"]))
                lines.append(f"    {target} : {node['failureSummary']}")
        return "\n".join(lines)

    return violations


@pytest.fixture(scope="package")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
