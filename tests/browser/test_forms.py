"""Every form, the staff's included, sent empty or wrong, with and without JavaScript: each
invalid field is marked aria-invalid with a message tied by aria-describedby, a summary links to
the fields, and the focus is on that summary (RGAA 11.10, 12.8), never left on <body>."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from conftest import PASSWORD
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from kb.helpdesk import accounts, posting
from kb.helpdesk.attachments import ReceivedForm

from .conftest import Server

pytestmark = pytest.mark.browser

# What a screen reader gets from each invalid field, read from the page itself.
INVALID_FIELDS = """form => [...form.querySelectorAll('[aria-invalid="true"]')].map(field => {
  const ids = (field.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
  const messages = ids.map(id => document.getElementById(id))
    .filter(n => n && n.classList.contains("field__error") && n.checkVisibility())
    .map(n => n.textContent.trim());
  return { id: field.id, messages };
})"""
FOCUSED = """() => {
  const a = document.activeElement;
  return a === document.body || !a ? "body" : (a.id || a.tagName.toLowerCase());
}"""


@dataclass
class Case:
    role: str | None  # who is logged in
    path: str
    form: str  # a CSS selector for the form
    button: str  # the submit button's name
    fill: dict[str, str]  # what is typed before sending (the rest stays empty)
    invalid: set[str]  # the fields the server refuses
    choose: dict[str, str] = field(default_factory=dict)  # options chosen in lists
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # files attached


def cases(reference: str, token: str) -> dict[str, Case]:
    return {
        "connexion": Case(None, "/connexion", "form.form", "Se connecter", {}, {"identifiant"}),
        "mot de passe oublié": Case(
            None, "/mot-de-passe-oublie", "form.form", "Recevoir le lien", {}, {"identifiant"}
        ),
        "première connexion": Case(
            None,
            f"/activation/{token}",
            "form.form",
            "Enregistrer et me connecter",
            {"confirmation": "autre chose"},
            {"mot_de_passe", "confirmation"},
        ),
        "nouveau ticket": Case(
            "0750654D",
            "/tickets/nouveau",
            "form[data-upload]",
            "Envoyer le ticket",
            {},
            {"categorie", "sujet", "message"},
        ),
        "réponse de l'établissement": Case(
            "0750654D", f"/tickets/{reference}", "form[data-upload]", "Envoyer", {}, {"message"}
        ),
        "mot de passe de l'espace personnel": Case(
            "0750654D",
            "/espace-personnel",
            "form[action$='mot-de-passe']",
            "Changer le mot de passe",
            {"nouveau": "court"},
            {"actuel", "nouveau", "confirmation"},
        ),
        "adresse e-mail": Case(
            "0750654D",
            "/espace-personnel",
            "form[action$='email']",
            "Recevoir le lien de confirmation",
            {},
            {"email"},
        ),
        "réponse du support": Case(
            "sam@cpro.fr",
            f"/support/tickets/{reference}",
            "form[data-upload]",
            "Envoyer",
            {},
            {"message"},
        ),
        "ticket ouvert par le support": Case(
            "sam@cpro.fr",
            "/support/tickets/nouveau",
            "form[data-upload]",
            "Ouvrir le ticket",
            {"uai": "0750654"},
            {"uai", "categorie", "sujet", "message"},
        ),
        "administration : créer un établissement": Case(
            "ada@cpro.fr",
            "/admin",
            "form[action$='/admin/comptes']",
            "Enregistrer",
            {"c-prenom": "Paul", "c-email": "paul@"},
            {"c-uai", "c-etab", "c-nom", "c-email"},
            choose={"c-role": "etablissement"},
        ),
        "administration : créer un agent": Case(
            "ada@cpro.fr",
            "/admin",
            "form[action$='/admin/comptes']",
            "Enregistrer",
            {"c-nom": "Ligne"},
            {"c-prenom", "c-email"},
            choose={"c-role": "agent"},
        ),
        "administration : import d'un mauvais fichier": Case(
            "ada@cpro.fr",
            "/admin",
            "form[action$='/admin/import']",
            "Importer",
            {},
            {"i-fichier"},
            files={"i-fichier": ("photo.csv", b"\x89PNG\r\n\x1a\n")},
        ),
        "administration : import sans fichier": Case(
            "ada@cpro.fr", "/admin", "form[action$='/admin/import']", "Importer", {}, {"i-fichier"}
        ),
    }


@pytest.mark.parametrize("javascript", [True, False], ids=["avec JavaScript", "sans JavaScript"])
def test_every_form_shows_its_errors_the_same_way(
    helpdesk: Server, visit: Callable[..., Page], axe: Callable[[Page], str], javascript: bool
) -> None:
    marie = helpdesk.establishment()
    helpdesk.agent()
    engine = helpdesk.app.state.services.engine
    admin, _ = accounts.save(
        engine, role="admin", login="ada@cpro.fr", establishment="", first_name="Ada",
        last_name="Admin", email="ada@cpro.fr",
    )  # fmt: skip
    accounts.set_password(engine, admin, PASSWORD)
    reference, _ = posting.create(
        engine, helpdesk.app.state.services.store, marie,
        ReceivedForm({"categorie": "abonnement", "sujet": "Facture", "message": "Où est-elle ?"}),
        {"abonnement": "Abonnement"}, delay=helpdesk.app.state.services.answer_delay, limit=1024**3,
    )  # fmt: skip
    pages: dict[str | None, Page] = {}
    problems = []
    for name, case in cases(reference, "").items():
        if case.role not in pages:
            page = pages[case.role] = visit(helpdesk.url, java_script_enabled=javascript)
            if case.role:
                helpdesk.log_in(page, case.role)
        page = pages[case.role]
        path = case.path
        if name == "première connexion":  # a fresh link each time: a used one is refused
            with engine.begin() as connection:
                path += accounts.issue_link(connection, marie, "reset", 2)
        page.goto(path)
        form = page.locator(case.form)
        for name_, value in case.fill.items():
            form.locator(f"#{name_}").fill(value)
        for name_, option in case.choose.items():
            form.locator(f"#{name_}").select_option(option)
        for name_, (filename, content) in case.files.items():
            form.locator(f"#{name_}").set_input_files(
                {"name": filename, "mimeType": "text/csv", "buffer": content}
            )
        form.get_by_role("button", name=case.button).click()
        summary = page.locator("[data-error-summary]:visible")
        expect(summary).to_have_count(1)
        form = page.locator(case.form)  # the page the server answered, or the same one
        found = {f["id"]: f["messages"] for f in form.evaluate(INVALID_FIELDS)}
        if set(found) != case.invalid:
            problems.append(
                f"{name} : champs invalides {sorted(found)} au lieu de {sorted(case.invalid)}"
            )
        for invalid, messages in found.items():
            if not messages or not all(messages):
                problems.append(f"{name} : #{invalid} sans message relié par aria-describedby")
        links = summary.get_by_role("link").evaluate_all("links => links.map(a => a.hash)")
        if sorted(links) != sorted(f"#{f}" for f in case.invalid):
            problems.append(f"{name} : le résumé mène à {links}")
        # `autofocus` is applied at the page's next rendering, maybe after the load event.
        with contextlib.suppress(PlaywrightTimeout):
            page.wait_for_function(f"() => ({FOCUSED})() !== 'body'", timeout=3000)
        focused = page.evaluate(FOCUSED)
        summary_id = summary.get_attribute("id")
        first = next(iter(found), None)
        if focused not in (summary_id, first):
            problems.append(f"{name} : le focus est sur {focused}, pas sur le résumé des erreurs")
        # The page with its errors shown (axe needs scripts: the same markup is checked with them).
        if javascript and (found_axe := axe(page)):
            problems.append(f"{name} : axe, erreurs affichées :\n{found_axe}")
        if javascript and summary.get_by_role("link").count():
            summary.get_by_role("link").first.click()  # a link of the summary leads to its field
            if page.evaluate(FOCUSED) == "body":
                problems.append(f"{name} : le lien du résumé laisse le focus sur body")
    assert not problems, "\n".join(problems)
