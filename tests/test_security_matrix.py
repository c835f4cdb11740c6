"""The hostile matrix, route by route: the test walks the application's route table, so a new
route is covered the day it is added, or this file fails until it says who may use it.

For every route and method: no session, another establishment's session, an establishment on
staff routes, no or a foreign CSRF token, an oversized body, hostile numbers, dates, bytes and
ids in every parameter. Every answer is a clear answer below 500 with the security headers;
stalled and truncated bodies are tried against a real server.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum

import httpx2
import pytest
from conftest import (
    Refusals,
    Web,
    activated_account,
    agent,
    article,
    attachment_ids,
    client_for,
    link_in,
    make_account,
    new_ticket,
    outbox,
    state_of,
    tus_upload,
)
from starlette.routing import Route
from starlette.testclient import TestClient
from test_uploads import serving

from kb.helpdesk import accounts, notifications
from kb.web.limits import FORM_BYTES


class Access(Enum):
    PUBLIC = "anyone, logged in or not"
    VISITOR_FORM = "anyone, with the form's CSRF token"
    ACCOUNT = "a logged-in account"
    AGENT = "a support agent"
    STAFF = "an agent or an editor"
    ADMIN = "an administrator"
    TUS = "a logged-in account, tus headers and the CSRF token in a header"


@dataclass(frozen=True)
class Entry:
    access: Access
    owned: bool = False  # the path names something of one account: others get `foreign`
    foreign: int = 404  # not found, as for what does not exist
    refused: tuple[int, ...] = (403,)  # without its CSRF token
    form: dict[str, str] = field(default_factory=dict)  # a body that would work with a token
    files: bool = False  # multipart, as ticket forms are sent
    stream: bool = False  # server-sent events: only refusals are tried, an open stream never ends


TICKET = {"jeton": "matrice", "categorie": "abonnement", "sujet": "S", "message": "M"}
NEW_PASSWORD = {
    "mot_de_passe": "une phrase assez longue",
    "confirmation": "une phrase assez longue",
}

# Who may use each route. A route missing here fails test_every_route_is_in_the_matrix.
MATRIX: dict[tuple[str, str], Entry] = {
    ("/api/search", "GET"): Entry(Access.PUBLIC),
    ("/api/suggest", "GET"): Entry(Access.PUBLIC),
    ("/api/articles/{slug}", "GET"): Entry(Access.PUBLIC),
    ("/api/openapi.json", "GET"): Entry(Access.PUBLIC),
    ("/", "GET"): Entry(Access.PUBLIC),
    ("/recherche", "GET"): Entry(Access.PUBLIC),
    ("/categories/{slug}", "GET"): Entry(Access.PUBLIC),
    ("/articles/{slug}", "GET"): Entry(Access.PUBLIC),
    ("/articles/{slug}/vote", "POST"): Entry(Access.VISITOR_FORM, form={"utile": "oui"}),
    ("/accessibilite", "GET"): Entry(Access.PUBLIC),
    ("/connexion", "GET"): Entry(Access.PUBLIC),
    ("/connexion", "POST"): Entry(
        Access.VISITOR_FORM, form={"identifiant": "0750654D", "mot_de_passe": "x"}
    ),
    ("/deconnexion", "POST"): Entry(Access.VISITOR_FORM),
    ("/mot-de-passe-oublie", "GET"): Entry(Access.PUBLIC),
    ("/mot-de-passe-oublie", "POST"): Entry(Access.VISITOR_FORM, form={"identifiant": "0750654D"}),
    ("/activation/{token}", "GET"): Entry(Access.PUBLIC),
    ("/activation/{token}", "POST"): Entry(Access.VISITOR_FORM, form=NEW_PASSWORD),
    ("/espace-personnel", "GET"): Entry(Access.ACCOUNT),
    ("/espace-personnel/mot-de-passe", "POST"): Entry(
        Access.ACCOUNT, form={"actuel": "x", "nouveau": "y", "confirmation": "y"}
    ),
    ("/espace-personnel/email", "POST"): Entry(
        Access.ACCOUNT, form={"email": "x@example.fr", "mot_de_passe": "x"}
    ),
    ("/confirmation-email/{token}", "GET"): Entry(Access.ACCOUNT, owned=True, foreign=410),
    ("/confirmation-email/{token}", "POST"): Entry(Access.ACCOUNT, owned=True, foreign=410),
    ("/annulation-email/{token}", "GET"): Entry(Access.PUBLIC),
    ("/annulation-email/{token}", "POST"): Entry(Access.VISITOR_FORM),
    ("/tickets", "GET"): Entry(Access.ACCOUNT),
    ("/tickets", "POST"): Entry(Access.ACCOUNT, form=TICKET, files=True),
    ("/tickets/nouveau", "GET"): Entry(Access.ACCOUNT),
    ("/tickets/{reference}", "GET"): Entry(Access.ACCOUNT, owned=True),
    ("/tickets/{reference}/reponses", "POST"): Entry(
        Access.ACCOUNT, owned=True, form={"message": "M"}, files=True
    ),
    ("/tickets/{reference}/statut", "POST"): Entry(
        Access.ACCOUNT, owned=True, form={"statut": "resolu"}
    ),
    ("/tickets/{reference}/pieces-jointes/{attachment}", "GET"): Entry(Access.ACCOUNT, owned=True),
    ("/support", "GET"): Entry(Access.AGENT),
    ("/support/tickets/{reference}", "GET"): Entry(Access.AGENT),
    ("/support/tickets/{reference}/reponses", "POST"): Entry(
        Access.AGENT, form={"message": "M"}, files=True
    ),
    ("/support/tickets/{reference}/statut", "POST"): Entry(Access.AGENT, form={"statut": "resolu"}),
    ("/rapport", "GET"): Entry(Access.STAFF),
    ("/__apercu/evenements", "GET"): Entry(Access.PUBLIC),
    ("/api/uploads", "OPTIONS"): Entry(Access.PUBLIC),
    ("/api/uploads", "POST"): Entry(Access.TUS),
    ("/api/uploads/{upload_id}", "OPTIONS"): Entry(Access.PUBLIC),
    ("/api/uploads/{upload_id}", "HEAD"): Entry(Access.TUS, owned=True),
    ("/api/uploads/{upload_id}", "PATCH"): Entry(Access.TUS, owned=True),
    ("/api/uploads/{upload_id}", "DELETE"): Entry(Access.TUS, owned=True),
    ("/static/{name:path}", "GET"): Entry(Access.PUBLIC),
    ("/healthz", "GET"): Entry(Access.PUBLIC),
    ("/livez", "GET"): Entry(Access.PUBLIC),
    ("/readyz", "GET"): Entry(Access.PUBLIC),
    ("/metrics", "GET"): Entry(Access.PUBLIC),  # by address (KB_METRICS_ALLOW), not by account
    ("/admin", "GET"): Entry(Access.ADMIN),
    ("/admin/comptes", "POST"): Entry(Access.ADMIN),
    ("/admin/comptes/{account:int}/desactiver", "POST"): Entry(Access.ADMIN),
    ("/admin/comptes/{account:int}/invitation", "POST"): Entry(Access.ADMIN),
    ("/admin/import", "POST"): Entry(Access.ADMIN),
    ("/avis/{reference}/{token}", "GET"): Entry(Access.PUBLIC),
    # A link that names no ticket is a 404 before any token is read.
    ("/avis/{reference}/{token}", "POST"): Entry(
        Access.VISITOR_FORM, form={"note": "5"}, refused=(403, 404)
    ),
    ("/tickets/{reference}/avis", "POST"): Entry(Access.ACCOUNT, owned=True, form={"note": "5"}),
    ("/support/tickets", "POST"): Entry(Access.AGENT, form=TICKET, files=True),
    ("/support/tickets/nouveau", "GET"): Entry(Access.AGENT),
    ("/support/tickets/{reference}/attribution", "POST"): Entry(Access.AGENT),
    ("/support/tickets/{reference}/presence", "GET"): Entry(Access.AGENT, stream=True),
    ("/support/tickets/{reference}/presence", "POST"): Entry(Access.AGENT),
    ("/support/tickets/{reference}/retenues/{message:int}", "POST"): Entry(Access.AGENT),
}

BODY_METHODS = {"POST", "PATCH", "DELETE", "PUT"}
PARAMETERS = ("q", "page", "per_page", "limit", "categorie", "category", "statut", "etablissement",
              "depuis", "jusqu_au", "article", "suivant", "vote", "depuis")  # fmt: skip
HOSTILE_VALUES = (
    "²", "٣", "１", "9" * 30, "9" * 1000, "-1", "1e309", "NaN", "0x10", "2147483648",
    "0001-01-01", "9999-12-31", "2026-02-30", "2026-13-01", "a\x00b", "%ff%fe",
    "../../etc/passwd", "<script>", "'; DROP TABLE tickets; --", "é" * 300,
)  # fmt: skip
HOSTILE_SEGMENTS = ("9" * 30, "²", "-1", "0", "a%00b", "%ff", "..%2f..%2fkb", "%2e%2e", "x" * 3000)


def route_methods(routes: list[Route]) -> Iterator[tuple[str, str]]:
    for route in routes:
        methods = set(route.methods or ())
        if "GET" in methods:
            methods.discard("HEAD")  # Starlette answers HEAD wherever GET is
        for method in sorted(methods):
            yield route.path, method


def test_every_route_is_in_the_matrix(make_web: Callable[..., Web]) -> None:
    web = make_web({})
    routes = [r for r in web.app.routes if isinstance(r, Route)]
    assert len(routes) == len(web.app.routes), "only plain routes: mounts need their own rows"
    served = set(route_methods(routes))
    missing = sorted(served - set(MATRIX))
    assert not missing, (
        "routes missing from the hostile matrix in tests/test_security_matrix.py; say who may "
        f"use each one: {missing}"
    )
    gone = sorted(set(MATRIX) - served)
    assert not gone, f"routes in the matrix that no longer exist: {gone}"


@dataclass
class World:
    web: Web
    school: TestClient
    other: TestClient
    support: TestClient
    editor: TestClient
    anonymous: TestClient
    values: dict[str, str]

    def path(self, template: str, **override: str) -> str:
        token = self.values.get(template.split("/")[1], "")
        values = {**self.values, "token": token, **override}
        return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values[m.group(1)], template)


@pytest.fixture
def world(make_web: Callable[..., Web], database_url: str) -> World:
    return make_world(make_web, database_url)


def make_world(make_web: Callable[..., Web], database_url: str) -> World:
    """Two establishments (one with a ticket, a file and an upload), an agent, an editor, an
    account waiting for activation, and a pending e-mail change: every id a route can name."""
    web = make_web({"abonnement/a.md": article("A")}, database_url=database_url)
    activated_account(web)
    activated_account(web, "0750655E", email="jean@example.fr")
    agent(web)
    editor, _ = accounts.save(web.services.engine, role="editeur", login="eve@cpro.fr",
                              establishment="", first_name="Ève", last_name="Éditrice",
                              email="eve@cpro.fr")  # fmt: skip
    accounts.set_password(web.services.engine, editor, "correct cheval agrafe pile")
    school, other = client_for(web, "0750654D"), client_for(web, "0750655E")
    reference = new_ticket(school, files=[("fichiers", ("a.txt", b"a", "text/plain"))])
    engine, settings = web.services.engine, web.settings
    pending = make_account(web, "0750656F", email="paul@example.fr")
    with engine.begin() as connection:
        notifications.queue_activation(connection, settings, pending)
    owner = accounts.by_login(engine, "0750654D")
    assert owner is not None
    with engine.begin() as connection:
        notifications.queue_email_change(connection, settings, owner, "nouvelle@example.fr")
    with engine.begin() as connection:
        notifications.queue_email_change_notice(connection, settings, owner, "nouvelle@example.fr")
    activation, change, cancel = (link_in(m).rsplit("/", 1)[1] for m in outbox(web)[-3:])
    values = {"slug": "a", "reference": reference, "attachment": str(attachment_ids(web)["a.txt"]),
              "upload_id": tus_upload(school, b"abc", complete=False), "name": "kb.css",
              "activation": activation, "confirmation-email": change,
              "annulation-email": cancel, "account": str(pending.id), "message": "1",
              "avis": "jeton-inconnu"}  # fmt: skip
    return World(web, school, other, client_for(web, "sam@cpro.fr"), client_for(web, "eve@cpro.fr"),
                 client_for(web), values)  # fmt: skip


def send(
    client: TestClient, method: str, path: str, entry: Entry, **options: object
) -> httpx2.Response:
    headers = dict(options.pop("headers", {}) or {})  # type: ignore[call-overload]
    if entry.access is Access.TUS:
        headers.setdefault("Tus-Resumable", "1.0.0")
        headers.setdefault("X-CSRF-Token", client.cookies.get("kb_csrf", ""))
        if method == "POST":
            headers.setdefault("Upload-Length", "3")
        if method == "PATCH":
            headers.setdefault("Upload-Offset", "0")
            headers.setdefault("Content-Type", "application/offset+octet-stream")
            options.setdefault("content", b"abc")
    if "data" in options and entry.files:
        options.setdefault("files", [("fichiers", ("", b"", "application/octet-stream"))])
    return client.request(method, path, headers=headers, **options)  # type: ignore[arg-type]


def clean(check: Refusals, what: str, response: httpx2.Response) -> None:
    """Below 500, with the security headers, and no traceback."""
    check.below_500(what, response)
    if "content-security-policy" not in response.headers:
        check.failures.append(f"{what}: no security headers")
    if b"Traceback" in response.content:
        check.failures.append(f"{what}: a traceback in the answer")


def test_the_hostile_matrix_on_every_route(world: World) -> None:
    check = Refusals()
    before = state_of(world.web)
    for (template, method), entry in MATRIX.items():
        path = world.path(template)
        what = f"{method} {template}"
        body = {"data": {**entry.form, "csrf": ""}} if method in BODY_METHODS else {}
        # No session.
        if entry.access in (Access.ACCOUNT, Access.AGENT, Access.STAFF, Access.ADMIN):
            response = send(world.anonymous, method, path, entry, **body)
            check.expect(f"{what} without a session", response, 303)
            if response.status_code == 303 and not response.headers["location"].startswith(
                "/connexion"
            ):
                check.failures.append(f"{what} without a session: not sent to the login page")
        if entry.access is Access.TUS:
            check.expect(f"{what} without a session",
                         send(world.anonymous, method, path, entry), 401)  # fmt: skip
        # Another establishment's session on what belongs to the first one.
        if entry.owned:
            own_token = {"data": {**entry.form, "csrf": world.other.cookies["kb_csrf"]}}
            response = send(world.other, method, path, entry, **(own_token if body else {}))
            check.expect(f"{what} from another establishment", response, entry.foreign)
        # An establishment (or an editor) on support's routes.
        if entry.access in (Access.AGENT, Access.STAFF, Access.ADMIN):
            check.expect(
                f"{what} as an establishment", send(world.school, method, path, entry), 403
            )
        if entry.access in (Access.AGENT, Access.ADMIN):
            check.expect(f"{what} as an editor", send(world.editor, method, path, entry), 403)
        if entry.stream:
            continue
        # No CSRF token, an empty one, another browser's.
        client = world.support if entry.access is Access.AGENT else world.school
        if method in BODY_METHODS and entry.access is not Access.PUBLIC:
            foreign = world.anonymous.cookies["kb_csrf"]
            for token in (None, "", foreign):
                if entry.access is Access.TUS:
                    headers = {"X-CSRF-Token": token or ""}
                    response = send(client, method, path, entry, headers=headers)
                else:
                    data = dict(entry.form) if token is None else {**entry.form, "csrf": token}
                    response = send(client, method, path, entry, data=data)
                check.expect(f"{what} csrf={token!r}", response, *entry.refused)
        # A body larger than the route takes, announced: refused before it is read.
        if method in BODY_METHODS or method == "GET":
            limit = world.web.app.state.body_policy.limit_for(
                {"type": "http", "path": path, "method": method}
            )
            response = send(
                client, method, path, entry,
                headers={"content-length": str(max(limit, FORM_BYTES) + 1)}, content=b"",
            )  # fmt: skip
            check.expect(f"{what} with an oversized body", response, 413)
        # Hostile values in every parameter any route reads, all at once, and in every path
        # segment.
        for value in HOSTILE_VALUES:
            clean(check, f"{what} ?…={value[:20]!r}",
                  send(client, method, path, entry, params=dict.fromkeys(PARAMETERS, value)))  # fmt: skip
        for segment in re.findall(r"\{(\w+)(?::\w+)?\}", template):
            for value in HOSTILE_SEGMENTS:
                hostile = world.path(template, **{segment: value})
                clean(check, f"{what} {segment}={value[:20]!r}",
                      send(client, method, hostile, entry))  # fmt: skip
        # Non-UTF-8 and NUL bytes in a body.
        if method in BODY_METHODS and entry.access is not Access.TUS:
            for raw in (b"csrf=\xff\xfe&x=\xc3", b"csrf=a\x00b&\x00=\x00", b"\xff" * 100):
                response = send(
                    client, method, path, entry, content=raw,
                    headers={"content-type": "application/x-www-form-urlencoded"},
                )  # fmt: skip
                clean(check, f"{what} body {raw[:12]!r}", response)
    assert not check.failures, "\n".join(check.failures)
    after = state_of(world.web)
    assert after[0] == before[0], "a ticket changed"  # no status, no new ticket


def test_stalled_and_truncated_bodies_on_every_route(make_web: Callable[..., Web]) -> None:
    """Against a real server: a body that stops is ended (408), one cut short changes nothing.
    (On SQLite only: the clock on bodies is in front of the routes, before any database.)"""
    world = make_world(make_web, "")
    web = world.web
    web.app.state.body_policy.form_seconds = web.app.state.body_policy.idle_seconds = 0.3
    before = state_of(web)
    check = Refusals()
    cookie = "; ".join(f"{k}={v}" for k, v in world.school.cookies.items())
    with serving(web) as base:
        host, port = base.removeprefix("http://").split(":")
        for template, method in MATRIX:
            if method not in ("POST", "PATCH"):  # a DELETE reads no body: nothing to stall
                continue
            head = (
                f"{method} {world.path(template)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Cookie: {cookie}\r\nContent-Length: 1000\r\nTus-Resumable: 1.0.0\r\n"
                f"X-CSRF-Token: {world.school.cookies['kb_csrf']}\r\nUpload-Offset: 0\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n\r\n"
            ).encode()
            # Stalled: ten bytes, then nothing.
            with socket.create_connection((host, int(port)), timeout=10) as connection:
                connection.sendall(head + b"csrf=xxxxx")
                answer = b""
                while chunk := connection.recv(65536):
                    answer += chunk
            status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
            if not 400 <= status < 500:
                check.failures.append(f"{method} {template} stalled: {answer[:80]!r}")
            # Truncated: the client goes away in the middle.
            with socket.create_connection((host, int(port)), timeout=10) as connection:
                connection.sendall(head + b"csrf=xx")
    assert not check.failures, "\n".join(check.failures)
    assert state_of(web)[:2] == before[:2]
