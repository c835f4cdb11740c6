"""An establishment's first login from its activation e-mail, its banner, its personal space."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import PASSWORD
from playwright.sync_api import Page, expect

from kb.cli import main

from .conftest import Server

pytestmark = pytest.mark.browser

# What the eye reads in the banner: the name's own text, without the words for screen readers,
# as the style sheet draws it.
VISIBLE_NAME = """el => {
  const own = [...el.childNodes].filter(n => !(n.classList && n.classList.contains("visually-hidden")));
  const text = own.map(n => n.textContent).join("").trim();
  return getComputedStyle(el).textTransform === "uppercase" ? text.toUpperCase() : text;
}"""


def provision(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """`kb accounts add`, as the administrator runs it, against this server's database."""
    for name, value in server.settings.as_env().items():
        monkeypatch.setenv(name, value)
    status = main(
        ["accounts", "add", "0750654D", "--etablissement", "Lycée Louis-le-Grand",
         "--prenom", "Marie", "--nom", "Curie", "--email", "marie@example.fr"]
    )  # fmt: skip
    assert status == 0


def test_first_login_from_the_activation_mail_to_logging_out(
    helpdesk: Server,
    visit: Callable[..., Page],
    axe: Callable[[Page], str],
    artifacts: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provision(helpdesk, monkeypatch)
    mail = helpdesk.outbox()[-1]
    assert mail["To"] == "Marie Curie <marie@example.fr>"
    assert mail["Subject"] == "Activez votre compte CPRO éducation"
    page = visit(helpdesk.url)

    page.goto(helpdesk.link_in_last_mail())
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Première connexion : choisissez votre mot de passe"
    )
    expect(page.get_by_role("main")).to_contain_text("Compte 0750654D — Lycée Louis-le-Grand.")
    assert not (found := axe(page)), f"axe, première connexion :\n{found}"

    password = page.get_by_label("Mot de passe", exact=True)
    confirmation = page.get_by_label("Confirmez le mot de passe")
    password.fill("trop court")
    confirmation.fill("trop court")
    page.get_by_role("button", name="Enregistrer et me connecter").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "Le mot de passe doit compter au moins 12 caractères."
    )
    expect(password).to_have_attribute("aria-invalid", "true")
    assert not (found := axe(page)), f"axe, première connexion refusée :\n{found}"

    password.fill(PASSWORD)  # the page after the refusal still uses the link: it is not spent
    confirmation.fill(PASSWORD)
    page.get_by_role("button", name="Enregistrer et me connecter").click()
    expect(page).to_have_url(re.compile(r"/espace-personnel\?bienvenue=1$"))
    expect(page.get_by_role("main").get_by_role("status")).to_have_text(
        "Votre compte est activé : vous êtes connecté."
    )

    banner = page.get_by_role("banner")
    name = banner.locator(".banner__name")
    expect(name).to_be_visible()
    assert name.evaluate(VISIBLE_NAME) == "MARIE CURIE"
    expect(
        banner.get_by_role("link", name=re.compile("Espace personnel de Marie Curie", re.I))
    ).to_be_visible()
    expect(banner.get_by_role("link", name="Assistance", exact=True)).to_have_attribute("href", "/")
    details = page.locator("dl.details")
    for term, value in {
        "Nom": "Marie Curie",
        "Établissement": "Lycée Louis-le-Grand",
        "Code UAI": "0750654D",
        "Adresse e-mail": "marie@example.fr",
    }.items():
        expect(details.locator(f"dt:text-is('{term}') + dd")).to_have_text(value)
    assert not (found := axe(page)), f"axe, espace personnel :\n{found}"
    page.screenshot(path=artifacts / "espace-personnel.png", full_page=True)

    banner.get_by_role("button", name="Déconnexion").click()
    expect(page).to_have_url(re.compile(r"/connexion\?deconnecte=1$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Connexion")
    expect(page.get_by_role("main").get_by_role("status")).to_have_text("Vous êtes déconnecté.")
    expect(banner.locator(".banner__name")).to_have_count(0)
    expect(banner.get_by_role("button", name="Déconnexion")).to_have_count(0)
    banner.get_by_role("link", name="Assistance", exact=True).click()
    expect(banner.get_by_role("link", name="Se connecter")).to_be_visible()
    page.goto("/espace-personnel")  # the session is really closed
    expect(page).to_have_url(re.compile(r"/connexion\?suivant=/espace-personnel$"))


def test_the_login_and_forgotten_password_pages_pass_axe(
    helpdesk: Server, visit: Callable[..., Page], axe: Callable[[Page], str], artifacts: Path
) -> None:
    helpdesk.establishment()
    page = visit(helpdesk.url)
    page.goto("/connexion")
    expect(page.get_by_role("heading", level=1)).to_have_text("Connexion")
    page.screenshot(path=artifacts / "connexion.png", full_page=True)
    assert not (found := axe(page)), f"axe, connexion :\n{found}"

    page.get_by_label("Code UAI de l'établissement").fill("0750654A")
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("UAI")
    expect(page.get_by_label("Code UAI de l'établissement")).to_have_value("0750654A")
    page.screenshot(path=artifacts / "connexion-erreur.png", full_page=True)
    assert not (found := axe(page)), f"axe, connexion refusée :\n{found}"

    page.get_by_role("link", name="Mot de passe oublié ?").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mot de passe oublié ?")
    assert not (found := axe(page)), f"axe, mot de passe oublié :\n{found}"
    page.get_by_label("Code UAI de l'établissement").fill("0750654d")
    page.get_by_role("button", name="Recevoir le lien").click()
    expect(page.get_by_role("main").get_by_role("status")).to_contain_text(
        "Si un compte correspond à cet identifiant"
    )
    assert not (found := axe(page)), f"axe, lien envoyé :\n{found}"
    assert helpdesk.outbox()[-1]["Subject"] == "Choisir un nouveau mot de passe CPRO éducation"
