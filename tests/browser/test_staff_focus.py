"""The staff's actions by keyboard: after each one (assign, hand over, status, a held reply sent
anyway or given up, a colleague's new reply, disable, invite, a canned-reply search that finds
nothing) the focus is on what the action did, never left on <body> (RGAA 12.8, 7.1)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable

import pytest
from conftest import PASSWORD
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from kb.helpdesk import accounts

from .conftest import Server
from .test_support import create_ticket
from .test_workspace import second_agent

pytestmark = pytest.mark.browser

# The focused element, as a screen reader user lands on it: "body" when the focus is lost.
FOCUSED = """() => {
  const a = document.activeElement;
  if (!a || a === document.body) return "body";
  return (a.id ? "#" + a.id : a.tagName.toLowerCase()) + " " + (a.textContent || "").trim();
}"""


def by_keyboard(page: Page, control: Locator) -> None:
    """Focus the control and press Enter, as a keyboard user does, until the page it leads to
    has loaded."""
    control.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")


def focus_after(page: Page, action: str, expected: str, problems: list[str]) -> None:
    page.wait_for_load_state()
    # `autofocus` is applied at the page's next rendering, which a busy machine may put after
    # the load event: given a moment, a focus still on <body> is the page's fault.
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(f"() => ({FOCUSED})() !== 'body'", timeout=3000)
    focused = page.evaluate(FOCUSED)
    if focused == "body" or expected not in focused:
        problems.append(f"{action} : le focus est sur « {focused} », pas sur « {expected} »")


def test_no_staff_action_leaves_the_focus_on_the_page(
    helpdesk: Server, visit: Callable[..., Page]
) -> None:
    helpdesk.establishment()
    helpdesk.agent()
    second_agent(helpdesk)
    engine = helpdesk.app.state.services.engine
    admin, _ = accounts.save(
        engine, role="admin", login="ada@cpro.fr", establishment="", first_name="Ada",
        last_name="Admin", email="ada@cpro.fr",
    )  # fmt: skip
    accounts.set_password(engine, admin, PASSWORD)
    school = visit(helpdesk.url)
    helpdesk.log_in(school, "0750654D")
    reference = create_ticket(school)
    problems: list[str] = []

    sam, alex = visit(helpdesk.url), visit(helpdesk.url)
    helpdesk.log_in(sam, "sam@cpro.fr")
    helpdesk.log_in(alex, "alex@cpro.fr")
    ticket = f"/support/tickets/{reference}"
    sam.goto(ticket)
    by_keyboard(sam, sam.get_by_role("button", name="Me l'attribuer"))
    focus_after(sam, "Me l'attribuer", "Attribution enregistrée.", problems)
    sam.get_by_label("Confier à").select_option(label="Alex Agent (0 en cours)")
    by_keyboard(sam, sam.get_by_role("button", name="Confier"))
    focus_after(sam, "Confier à", "Attribution enregistrée.", problems)
    sam.get_by_label("Changer le statut").select_option("en_cours")
    by_keyboard(sam, sam.get_by_role("button", name="Appliquer"))
    focus_after(sam, "Changer le statut", "Statut modifié.", problems)

    # A colleague's reply, then another: the banner's link is replaced under the keyboard.
    alex.goto(ticket)
    sam.goto(ticket)
    alex.get_by_label("Message", exact=True).fill("Première réponse d'Alex.")
    by_keyboard(alex, alex.get_by_role("button", name="Envoyer", exact=True))
    focus_after(alex, "Envoyer", "Réponse envoyée", problems)
    banner_link = sam.locator("[data-new-reply]").get_by_role("link")
    expect(banner_link).to_be_visible()
    banner_link.focus()
    first = banner_link.get_attribute("href")
    alex.get_by_label("Message", exact=True).fill("Seconde réponse d'Alex.")
    by_keyboard(alex, alex.get_by_role("button", name="Envoyer", exact=True))
    expect(banner_link).not_to_have_attribute("href", first or "")
    focus_after(sam, "nouveau message d'un collègue", "Afficher les échanges à jour", problems)

    # Sam's reply, written before both, is held: the focus goes to why; sent anyway.
    sam.get_by_label("Message", exact=True).fill("Réponse de Sam.")
    by_keyboard(sam, sam.get_by_role("button", name="Envoyer", exact=True))
    held = sam.get_by_role("region", name="Un autre agent a répondu pendant que vous écriviez")
    expect(held).to_be_visible()
    focus_after(sam, "réponse retenue", "Un autre agent a répondu", problems)
    by_keyboard(sam, sam.get_by_role("button", name="Envoyer ma réponse"))
    focus_after(sam, "Envoyer ma réponse", "Réponse envoyée", problems)
    # Held again, and given up this time.
    alex.goto(ticket)
    sam.goto(ticket)
    alex.get_by_label("Message", exact=True).fill("Troisième réponse d'Alex.")
    by_keyboard(alex, alex.get_by_role("button", name="Envoyer", exact=True))
    expect(sam.locator("[data-new-reply]")).to_be_visible()
    sam.get_by_label("Message", exact=True).fill("Réponse de Sam, à abandonner.")
    by_keyboard(sam, sam.get_by_role("button", name="Envoyer", exact=True))
    by_keyboard(sam, sam.get_by_role("button", name="Abandonner ma réponse"))
    focus_after(sam, "Abandonner ma réponse", "Votre réponse retenue est supprimée", problems)

    # A canned-reply search that finds nothing: said at the field, which keeps the focus.
    search = sam.get_by_role("searchbox", name="Réponses types")
    search.fill("xylophone")
    by_keyboard(sam, search)
    focus_after(sam, "réponse type introuvable", "#reponse-type", problems)
    expect(search).to_have_attribute("aria-invalid", "true")
    expect(search).to_have_accessible_description(
        re.compile(r"^Erreur : Aucune réponse type ne contient « xylophone » : essayez")
    )

    ada = visit(helpdesk.url)
    helpdesk.log_in(ada, "ada@cpro.fr")
    ada.goto("/admin?q=0750654D")
    by_keyboard(ada, ada.get_by_role("button", name="Désactiver 0750654D"))
    focus_after(ada, "Désactiver", "Compte désactivé", problems)
    ada.locator("#c-role").select_option("agent")
    ada.get_by_label("Prénom").fill("Léa")
    ada.get_by_label("Nom", exact=True).fill("Ligne")
    ada.get_by_label("Adresse e-mail").fill("lea@cpro.fr")
    by_keyboard(ada, ada.get_by_role("button", name="Enregistrer"))
    focus_after(ada, "Enregistrer un compte", "Compte lea@cpro.fr créé", problems)
    by_keyboard(ada, ada.get_by_role("button", name="Renvoyer l'invitation à lea@cpro.fr"))
    focus_after(ada, "Renvoyer l'invitation", "E-mail d'activation envoyé", problems)
    assert not problems, "\n".join(problems)
