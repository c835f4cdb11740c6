"""Every page of the route table at 320 and 390 CSS px, for a visitor, an establishment, an agent
and an administrator: no horizontal scrolling of the page (RGAA 10.11), even with the text
spacing of RGAA 10.12."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import PASSWORD
from playwright.sync_api import Page
from starlette.routing import Route

from kb.helpdesk import accounts, posting
from kb.helpdesk.attachments import ReceivedForm

from .conftest import Server

pytestmark = pytest.mark.browser

NARROW = {"width": 320, "height": 640}
PHONE = {"width": 390, "height": 844}
# Who walks the pages: no one, an establishment, an agent, an administrator (their login).
ROLES = {
    "visiteur": None, "établissement": "0750654D", "agent": "sam@cpro.fr", "admin": "ada@cpro.fr",
}  # fmt: skip
# Routes that are not pages a person reads: data, files, form targets, streams.
NOT_PAGES = {
    "api_search", "api_suggest", "api_article", "api_openapi", "static", "healthz", "livez",
    "readyz",
    "preview_events", "uploads", "upload", "attachment", "logout", "vote",
    "account_password", "account_email", "ticket_reply", "ticket_status", "support_reply",
    "support_status", "metrics", "support_presence", "support_typing", "support_held",
    "support_assign", "support_create_ticket", "admin_disable", "admin_import", "admin_invite",
    "admin_save", "ticket_rating",
    "rating_link",  # a signed link from an e-mail: not built here
}  # fmt: skip
# What WCAG's "text spacing" asks a page to survive (RGAA 10.12).
TEXT_SPACING = """
* { line-height: 1.5 !important; letter-spacing: .12em !important; word-spacing: .16em !important; }
p { margin-bottom: 2em !important; }
"""
# The page's own width against the window's; and what sticks out, to say where it fails.
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const scrolls = el => { for (let n = el.parentElement; n; n = n.parentElement) {
    const o = getComputedStyle(n).overflowX; if (o === "auto" || o === "scroll") return true; }
    return false; };
  const out = [...document.body.querySelectorAll("*")].filter(el => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.right > width + 1 && !scrolls(el) && el.checkVisibility();
  }).slice(0, 5).map(el => el.tagName.toLowerCase() + (el.className ? "." + el.className : "")
    + " → " + Math.round(el.getBoundingClientRect().right) + " px");
  return { scroll: document.documentElement.scrollWidth, width, out };
}"""


def page_routes(server: Server) -> dict[str, Route]:
    routes = {r.name: r for r in server.app.routes if isinstance(r, Route)}
    return {n: r for n, r in routes.items() if n not in NOT_PAGES and "GET" in (r.methods or ())}


def sample_paths(server: Server, reference: str, token: str) -> dict[str, str]:
    """One address per page route; the test fails when a new page route has none."""
    app = server.app
    values = {
        "category": {"slug": "compte-utilisateur"},
        "article": {"slug": "modifier-son-mot-de-passe"},
        "ticket": {"reference": reference},
        "support_ticket": {"reference": reference},
        "activate": {"token": token},
        "confirm_email": {"token": token},  # replaced by an e-mail link below
        "cancel_email": {"token": token},  # likewise
    }
    paths = {}
    for name, route in page_routes(server).items():
        params = values.get(name, {})
        assert set(params) == set(route.param_convertors), (
            f"route {name} : adresse d'exemple à ajouter"
        )
        paths[name] = str(app.url_path_for(name, **params))
    paths["search"] += "?q=mot+de+passe"
    paths["report"] += "?depuis=2026-01-01&jusqu_au=2026-03-31"
    return paths


def overflowing(page: Page, path: str) -> str | None:
    response = page.goto(path)
    assert response is not None and response.status < 500, (
        f"{path} : {response and response.status}"
    )
    found = page.evaluate(OVERFLOW)
    if found["scroll"] > found["width"]:
        return f"{path} : {found['scroll']} px de large pour {found['width']} px ({found['out']})"
    # As a user style sheet would: beside the page's own, outside its CSP.
    page.evaluate(
        "css => { const s = new CSSStyleSheet(); s.replaceSync(css);"
        " document.adoptedStyleSheets = [...document.adoptedStyleSheets, s]; }",
        TEXT_SPACING,
    )
    found = page.evaluate(OVERFLOW)
    if found["scroll"] > found["width"]:
        return f"{path} avec l'espacement du texte : {found['scroll']} px ({found['out']})"
    return None


def every_page(helpdesk: Server) -> dict[str, str]:
    """The accounts of ROLES, a ticket with a long subject, and one address per page route:
    what each role walks."""
    marie = helpdesk.establishment()
    helpdesk.agent()
    engine = helpdesk.app.state.services.engine
    admin, _ = accounts.save(
        engine, role="admin", login="ada@cpro.fr", establishment="", first_name="Ada",
        last_name="Admin", email="ada@cpro.fr",
    )  # fmt: skip
    accounts.set_password(engine, admin, PASSWORD)
    # A long establishment name and a long subject: what overflows first in real life.
    form = ReceivedForm(
        {
            "categorie": "compte-utilisateur",
            "sujet": "Impossible de se connecter depuis l'ordinateur de la salle des professeurs",
            "message": "Le message d'erreur dit : identifiant-ou-mot-de-passe-incorrect-réessayez.",
        }
    )
    reference, _ = posting.create(
        engine, helpdesk.app.state.services.store, marie, form,
        {"compte-utilisateur": "Compte utilisateur"}, delay=helpdesk.app.state.services.answer_delay, limit=1024**3,
    )  # fmt: skip
    # Real links (they are only looked at, never used): the pages as their mail opens them.
    with engine.begin() as connection:
        reset = accounts.issue_link(connection, marie, "reset", 2)
        email = accounts.issue_link(connection, marie, "email_change", 2, new_email="m@example.fr")
        cancel = accounts.issue_link(connection, marie, "email_cancel", 2, new_email=marie.email)
    paths = sample_paths(helpdesk, reference, reset)
    paths["confirm_email"] = str(helpdesk.app.url_path_for("confirm_email", token=email))
    paths["cancel_email"] = str(helpdesk.app.url_path_for("cancel_email", token=cancel))
    return paths


def test_every_page_reflows_at_320_and_390_px_for_every_role(
    helpdesk: Server, visit: Callable[..., Page]
) -> None:
    paths = every_page(helpdesk)
    problems = []
    for role, login in ROLES.items():
        page = visit(helpdesk.url)
        if login:
            helpdesk.log_in(page, login)
        for size in (NARROW, PHONE):
            page.set_viewport_size(size)  # type: ignore[arg-type]
            for name, path in paths.items():
                problem = overflowing(page, path)
                if problem:
                    problems.append(f"{role}, {size['width']} px, {name} — {problem}")
    assert not problems, "\n".join(problems)
