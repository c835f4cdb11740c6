"""Fixtures: a help center built from a dict of files, the CLI, the shipped content."""

from __future__ import annotations

import contextlib
import os
import re
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.testclient import TestClient

from kb import tables
from kb.cli import main
from kb.config import Settings
from kb.helpdesk import accounts
from kb.helpdesk.accounts import Account
from kb.knowledge.build import build
from kb.knowledge.search import SearchIndex, Snapshot
from kb.testing import free_port
from kb.web.app import create_app
from kb.web.services import Services

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CONTENT = ROOT / "content"

CATEGORIES = {
    "compte-utilisateur/_category.yml": (
        "title: Compte utilisateur\norder: 1\ndescription: Le compte.\n"
    ),
    "abonnement/_category.yml": "title: Abonnement\norder: 2\ndescription: L'abonnement.\n",
    "utilisation/_category.yml": (
        "title: Utilisation de l'application\norder: 3\ndescription: L'usage.\n"
    ),
}


def article(title: str, body: str = "Un texte.", **front: object) -> str:
    """The text of an article file with the given front matter."""
    lines = [f"title: {title}"]
    for key, value in front.items():
        lines.append(f"{key}: {value}")
    return "---\n" + "\n".join(lines) + "\n---\n" + textwrap.dedent(body).strip() + "\n"


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
    return root


@dataclass
class Site:
    content: Path
    index: Path

    def write(self, files: dict[str, str | bytes]) -> None:
        write_tree(self.content, files)

    def build(self, full: bool = False):  # type: ignore[no-untyped-def]
        return build(self.content, self.index, full=full)

    def snapshot(self) -> Snapshot:
        return SearchIndex(self.index).snapshot()

    def slugs(self, query: str, **options: object) -> list[str]:
        return [h.slug for h in self.snapshot().search(query, **options).hits]  # type: ignore[arg-type]


@pytest.fixture
def make_site(tmp_path: Path) -> Callable[..., Site]:
    """A help center from a dict of files (categories included unless given)."""

    def make(files: dict[str, str | bytes], categories: bool = True, built: bool = True) -> Site:
        site = Site(tmp_path / "content", tmp_path / "index")
        site.write({**(CATEGORIES if categories else {}), **files})
        if built:
            site.build()
        return site

    return make


@pytest.fixture(scope="session")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    """The shipped content, built once for the session."""
    index = tmp_path_factory.mktemp("shipped-index")
    build(SHIPPED_CONTENT, index)
    return SearchIndex(index).snapshot()


@dataclass
class Run:
    status: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Runs `kb ARGS…` in-process and returns its status and output."""

    def run(*args: str | Path) -> Run:
        try:
            status = main([str(a) for a in args])
        except SystemExit as exc:  # argparse usage errors
            status = int(exc.code or 0)
        captured = capsys.readouterr()
        return Run(status, captured.out, captured.err)

    return run


# --- the web layer and its database ---------------------------------------------------------

POSTGRES_ADMIN_URL = os.environ.get(
    "KB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _postgres_reachable() -> bool:
    engine = sa.create_engine(POSTGRES_ADMIN_URL)
    try:
        with engine.connect():
            return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test that touches the database runs on SQLite and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'kb.sqlite3'}"
        return
    if not _postgres_reachable():
        if os.environ.get("KB_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL injoignable : {POSTGRES_ADMIN_URL}")
        pytest.skip("PostgreSQL injoignable")
    with postgres_database() as url:
        yield url


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    name = f"kb_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Web:
    site: Site
    settings: Settings
    app: Starlette
    client: TestClient

    @property
    def services(self) -> Services:
        """What the routes work with: the engine, the stores, the index."""
        services: Services = self.app.state.services
        return services

    def csrf(self) -> str:
        """The CSRF token the browser got with its first page."""
        self.client.get("/")
        return self.client.cookies["kb_csrf"]


@pytest.fixture
def make_web(make_site: Callable[..., Site], tmp_path: Path) -> Iterator[Callable[..., Web]]:
    """The help center over a site, with its own data dir; usage is flushed by hand."""
    clients: list[TestClient] = []

    def make(
        files: dict[str, str | bytes] | None = None,
        database_url: str = "",
        shipped: bool = False,
        **settings: object,
    ) -> Web:
        if shipped:
            site = Site(SHIPPED_CONTENT, tmp_path / "index")
            site.build()
        else:
            site = make_site(files or {})
        config = Settings.from_env(
            {},
            content_dir=site.content,
            index_dir=site.index,
            data_dir=tmp_path / "var",
            database_url=database_url,
            **settings,
        )
        app = create_app(config, background=False)
        client = TestClient(app, follow_redirects=False)
        client.__enter__()
        clients.append(client)
        return Web(site, config, app, client)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


# --- accounts ---------------------------------------------------------------------------------

PASSWORD = "correct cheval agrafe pile"


def outbox(web: Web) -> list[EmailMessage]:
    """The messages kb wrote to the data dir's outbox, oldest first, once its sender (which a
    serving process runs in the background) has delivered what was queued."""
    web.services.mail_sender.deliver()
    folder = web.settings.data_dir / "outbox"
    if not folder.exists():
        return []
    return [
        message_from_bytes(p.read_bytes(), policy=email_policy.default)  # type: ignore[misc]
        for p in sorted(folder.glob("*.eml"))
    ]


def link_in(message: EmailMessage) -> str:
    """The path of the single link in a message's text."""
    body = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    url = re.search(r"https?://\S+", body)[0]  # type: ignore[index]
    return "/" + url.split("/", 3)[3]


def make_account(web: Web, uai: str = "0750654D", email: str = "marie@example.fr") -> Account:
    account, _ = accounts.save(
        web.services.engine,
        role="etablissement",
        login=uai,
        establishment="Lycée Louis-le-Grand",
        first_name="Marie",
        last_name="Curie",
        email=email,
    )
    return account


def activated_account(web: Web, uai: str = "0750654D", **fields: str) -> Account:
    account = make_account(web, uai, **fields)
    accounts.set_password(web.services.engine, account, PASSWORD)
    return accounts.by_login(web.services.engine, account.login)  # type: ignore[return-value]


def log_in(web: Web, login: str = "0750654D", password: str = PASSWORD) -> httpx2.Response:
    token = web.csrf()
    return web.client.post(
        "/connexion", data={"csrf": token, "identifiant": login, "mot_de_passe": password}
    )


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id still, at test-sized costs: the real costs are checked in test_accounts."""
    monkeypatch.setattr(
        accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    accounts._dummy_hash.cache_clear()


# --- what hostile tests share: payloads, what a browser would run, other browsers ---------------

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
ATTRIBUTE = "' onmouseover='alert(1)' \" onmouseover=\"alert(1)"
TEMPLATE = "{{7*7}} {% raw %}"
PAYLOADS = (SCRIPT, IMG, ATTRIBUTE, TEMPLATE)
EVERYTHING = " ".join(PAYLOADS)

# --- what a browser would make of a page --------------------------------------------------------

_URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "poster", "data"}


class _Browser(HTMLParser):
    """Collects what would run (elements, handlers, script URLs) and the text a reader sees."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.injected: list[str] = []
        self.shown: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "script" and not values.get("src"):
            self.injected.append("<script> inline")
        if tag == "img" and values.get("src") == "x":
            self.injected.append("<img src=x>")
        for name, value in values.items():
            if name.startswith("on"):
                self.injected.append(f"<{tag} {name}=…>")
            url = re.sub(r"[\x00-\x20]", "", value).lower()
            if name in _URL_ATTRIBUTES and url.startswith(("javascript:", "vbscript:")):
                self.injected.append(f"<{tag} {name}={value!r}>")
            if name == "href" and url.startswith("data:"):
                self.injected.append(f"<{tag} href={value!r}>")
            self.shown.append(value)

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        self.shown.append(data)


@dataclass
class Seen:
    injected: list[str]
    text: str  # text nodes and attribute values, unescaped, one a line


def seen(markup: str) -> Seen:
    browser = _Browser()
    browser.feed(markup)
    browser.close()
    return Seen(browser.injected, "\n".join(browser.shown))


def assert_escaped(markup: str, *shown: str) -> None:
    """Nothing runs, and each of `shown` reaches the reader as text."""
    page = seen(markup)
    assert page.injected == [], page.injected
    assert SCRIPT not in markup and "<img src=x" not in markup
    for text in shown:
        assert text in page.text, text


def assert_json_error(response: httpx2.Response, status: int) -> None:
    assert response.status_code == status, response.text[:500]
    error = response.json()["error"]
    assert set(error) >= {"status", "code", "message"} and error["status"] == status
    assert error["message"] and "Traceback" not in error["message"]


def client_for(web: Web, login: str | None = None) -> TestClient:
    """Another browser on the same help center; 500s come back as responses, not exceptions."""
    client = TestClient(web.app, follow_redirects=False, raise_server_exceptions=False)
    client.get("/")
    if login is not None:
        response = client.post(
            "/connexion",
            data={
                "csrf": client.cookies["kb_csrf"],
                "identifiant": login,
                "mot_de_passe": PASSWORD,
            },
        )
        assert response.status_code == 303, response.text[:500]
    return client


def agent(web: Web, email: str = "sam@cpro.fr", role: str = "agent") -> accounts.Account:
    """Sam Support, an agent (or an editor, an administrator) with the tests' password."""
    account, _ = accounts.save(web.services.engine, role=role, login=email, establishment="",
                               first_name="Sam", last_name="Support", email=email)  # fmt: skip
    accounts.set_password(web.services.engine, account, PASSWORD)
    return account


def as_agent(web: Web) -> None:
    """The help center's own browser, now Sam Support's."""
    web.client.cookies.clear()
    assert log_in(web, "sam@cpro.fr").status_code == 303


# The support's help center: two articles to link, an establishment and an agent.
SUPPORT_FILES = {
    "compte-utilisateur/mot-de-passe-oublie.md": article(
        "J'ai oublié mon mot de passe", "Cliquez sur Mot de passe oublié.", aliases="[mdp-perdu]"
    ),
    "abonnement/renouveler.md": article("Renouveler l'abonnement", "Avant l'échéance."),
}


def help_desk(web: Web) -> Web:
    """Marie Curie's establishment (0750654D) and Sam Support on this help center."""
    activated_account(web)
    agent(web)
    return web


@pytest.fixture
def desk(make_web: Callable[..., Web], database_url: str) -> Web:
    """The support's help center on each database (SUPPORT_FILES, help_desk)."""
    return help_desk(make_web(SUPPORT_FILES, database_url=database_url))


def school_ticket(
    web: Web, subject: str = "Mot de passe perdu", category: str = "compte-utilisateur"
) -> str:
    """The logged-in establishment's ticket, with a screenshot, sent through the form: its
    reference."""
    response = web.client.post(
        "/tickets",
        data={"csrf": web.client.cookies["kb_csrf"], "jeton": subject, "categorie": category,
              "sujet": subject, "message": "Je ne peux plus me connecter."},
        files=[("fichiers", ("capture.png", b"\x89PNG", "image/png"))],
    )  # fmt: skip
    return response.headers["location"].split("?")[0].rsplit("/", 1)[1]


def new_ticket(
    client: TestClient,
    subject: str = "Facture introuvable",
    message: str = "Le bouton ne répond pas.",
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None,
    **fields: str,
) -> str:
    data = {"csrf": client.cookies["kb_csrf"], "jeton": uuid.uuid4().hex, "categorie": "abonnement",
            "sujet": subject, "message": message, **fields}  # fmt: skip
    response = client.post(
        "/tickets", data=data, files=files or [("fichiers", ("", b"", "application/octet-stream"))]
    )
    assert response.status_code == 303, response.text[:1000]
    return response.headers["location"].split("?")[0].rsplit("/", 1)[1]


@dataclass
class Refusals:
    """Responses collected route by route, so one run names every route that failed."""

    failures: list[str] = field(default_factory=list)

    def expect(self, what: str, response: httpx2.Response, *statuses: int) -> None:
        if response.status_code not in statuses:
            self.failures.append(f"{what}: {response.status_code}, expected {statuses}")

    def below_500(self, what: str, response: httpx2.Response) -> None:
        if response.status_code >= 500:
            self.failures.append(f"{what}: {response.status_code}")


def attachment_ids(web: Web) -> dict[str, int]:
    with web.services.engine.connect() as connection:
        rows = connection.execute(sa.select(tables.attachments.c.filename, tables.attachments.c.id))
        return {name: int(id_) for name, id_ in rows}


def state_of(web: Web) -> tuple[object, ...]:
    """Everything another establishment must not be able to change."""
    with web.services.engine.connect() as connection:
        tickets = connection.execute(
            sa.select(tables.tickets.c.reference, tables.tickets.c.status).order_by(
                tables.tickets.c.id
            )
        ).all()
        counts = [
            connection.execute(sa.select(sa.func.count()).select_from(table)).scalar()
            for table in (tables.messages, tables.attachments, tables.uploads)
        ]
    files = sorted(str(p) for p in web.settings.data_dir.rglob("*") if p.is_file())
    return tuple(tickets), tuple(counts), tuple(f for f in files if "/outbox/" not in f)


def tus_upload(client: TestClient, data: bytes, complete: bool) -> str:
    tus = {"Tus-Resumable": "1.0.0", "X-CSRF-Token": client.cookies["kb_csrf"]}
    created = client.post("/api/uploads", headers={**tus, "Upload-Length": str(len(data))})
    assert created.status_code == 201
    url = created.headers["location"]
    if complete:
        patched = client.patch(
            url, content=data,
            headers={**tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        )  # fmt: skip
        assert patched.status_code == 204
    return url.rsplit("/", 1)[1]


# --- pages as a person reads them -----------------------------------------------------------


class _Reader(HTMLParser):
    """Visible text (no script or style), links with their text, and form fields."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.links: list[tuple[str, str]] = []
        self.fields: list[dict[str, str]] = []
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.terms: list[tuple[str, str]] = []
        self._hidden = 0
        self._link: tuple[str, list[str]] | None = None
        self._textarea: dict[str, str] | None = None
        self._term: list[str] | None = None  # the words of the <dt> or <dd> being read
        self.headings: list[str] = []  # <h1>'s words
        self._heading: list[str] | None = None
        self._last_term = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.elements.append((tag, attributes))
        if tag in ("script", "style", "template"):
            self._hidden += 1
        elif tag == "a" and "href" in attributes:
            self._link = (attributes["href"], [])
        elif tag in ("input", "select", "textarea"):
            self.fields.append({"tag": tag, **attributes})
            if tag == "textarea":
                self._textarea = self.fields[-1]
                self._textarea["value"] = ""
        elif tag in ("dt", "dd"):
            self._term = []
        elif tag == "h1":
            self._heading = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "template"):
            self._hidden -= 1
        elif tag == "a" and self._link is not None:
            href, words = self._link
            self.links.append((href, " ".join("".join(words).split())))
            self._link = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "h1" and self._heading is not None:
            self.headings.append(" ".join("".join(self._heading).split()))
            self._heading = None
        elif tag in ("dt", "dd") and self._term is not None:
            words = " ".join("".join(self._term).split())
            if tag == "dt":
                self._last_term = words
            else:
                self.terms.append((self._last_term, words))
            self._term = None

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        self.text.append(data)
        if self._link is not None:
            self._link[1].append(data)
        if self._textarea is not None:
            self._textarea["value"] += data
        if self._term is not None:
            self._term.append(data)
        if self._heading is not None:
            self._heading.append(data)


@dataclass
class Page:
    """What a person gets from a page, and what the server rendered it from: the template's name
    and context. Tests assert these rather than markup, so a markup edit breaks no test."""

    response: httpx2.Response

    def __post_init__(self) -> None:
        reader = _Reader()
        reader.feed(self.response.text)
        self._reader = reader

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def template(self) -> str:
        return str(self.response.template.name)  # type: ignore[attr-defined]

    @property
    def context(self) -> dict[str, Any]:
        context: dict[str, Any] = self.response.context  # type: ignore[attr-defined]
        return context

    @property
    def text(self) -> str:
        """The page's words as read, white space folded."""
        return " ".join("".join(self._reader.text).split())

    @property
    def links(self) -> list[tuple[str, str]]:
        """(href, text) of every link, in page order."""
        return self._reader.links

    def link(self, text: str) -> str:
        """The href of the first link whose text is exactly `text`."""
        return next(href for href, words in self.links if words == text)

    @property
    def fields(self) -> list[dict[str, str]]:
        """Inputs, selects and textareas with their attributes (a textarea's text as `value`)."""
        return self._reader.fields

    def field(self, **attributes: str) -> dict[str, str]:
        """The first field with these attributes (`name=`, `id=`…)."""
        return next(
            found for found in self.fields if all(found.get(k) == v for k, v in attributes.items())
        )

    @property
    def heading(self) -> str:
        """The page's title as read: its first <h1>."""
        return self._reader.headings[0]

    @property
    def terms(self) -> dict[str, str]:
        """What description lists say: each <dt>'s words, and its <dd>'s."""
        return dict(self._reader.terms)

    def having(self, tag: str, **attributes: str) -> list[dict[str, str]]:
        """Elements with these attributes (`class_` for class, `aria_label` for aria-label);
        `tag` "*" for any element."""
        wanted = {k.rstrip("_").replace("_", "-"): v for k, v in attributes.items()}
        return [
            found
            for name, found in self._reader.elements
            if tag in ("*", name) and all(found.get(k) == v for k, v in wanted.items())
        ]


def page(web: Web, url: str, **params: Any) -> Page:
    """GET `url` as a page. Without gzip: Starlette's GZipMiddleware drops the template and
    context that TestClient reads (the `http.response.debug` message)."""
    return read(web.client, url, **params)


def read(client: TestClient, url: str, **params: Any) -> Page:
    """`page`, in another browser (a client of its own, its own session)."""
    headers = {"accept-encoding": "identity"}
    return Page(client.get(url, params=params or None, headers=headers))


class Inbox:
    """An SMTP (or LMTP) server's handler that keeps every message it receives, parsed."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=email_policy.default))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """A real local SMTP server (aiosmtpd) kb can send through: its inbox and its port."""
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()
