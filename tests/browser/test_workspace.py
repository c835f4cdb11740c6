"""Two agents on one ticket at once: each sees the other, and the second reply is held beside
the first before it goes. Staff pages at 390 px, by keyboard, without axe violations."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import PASSWORD
from playwright.sync_api import Page, ViewportSize, expect

from kb.helpdesk import accounts

from .conftest import Server
from .test_support import create_ticket

pytestmark = pytest.mark.browser

# What sticks out past the right edge of the screen, to say where an overflow comes from.
WIDEST = """() => [...document.querySelectorAll("body *")]
  .filter(e => e.getBoundingClientRect().right > innerWidth + 1 && !e.closest(".table-wrap"))
  .map(e => e.tagName.toLowerCase() + "." + e.className + " " + Math.round(e.getBoundingClientRect().right))
  .slice(0, 12).join(", ")"""
PHONE: ViewportSize = {"width": 390, "height": 844}


def second_agent(helpdesk: Server) -> None:
    account, _ = accounts.save(
        helpdesk.app.state.services.engine, role="agent", login="alex@cpro.fr", establishment="",
        first_name="Alex", last_name="Agent", email="alex@cpro.fr",
    )  # fmt: skip
    accounts.set_password(helpdesk.app.state.services.engine, account, PASSWORD)


def test_two_agents_on_one_ticket_see_each_other_and_no_reply_doubles_another(
    helpdesk: Server, visit: Callable[..., Page], axe: Callable[[Page], str], artifacts: Path
) -> None:
    helpdesk.establishment()
    helpdesk.agent()
    second_agent(helpdesk)
    school = visit(helpdesk.url)
    helpdesk.log_in(school, "0750654D")
    reference = create_ticket(school)

    sam, alex = visit(helpdesk.url), visit(helpdesk.url)
    helpdesk.log_in(sam, "sam@cpro.fr")
    helpdesk.log_in(alex, "alex@cpro.fr")
    sam.goto(f"/support/tickets/{reference}")
    alex.goto(f"/support/tickets/{reference}")
    presence = sam.locator("[data-presence]")
    expect(presence).to_have_text("Alex Agent consulte ce ticket")
    expect(alex.locator("[data-presence]")).to_have_text("Sam Support consulte ce ticket")

    alex.get_by_label("Message", exact=True).press_sequentially("Bonjour, réinitialisez")
    expect(presence).to_have_text("Alex Agent écrit une réponse")
    assert not (found := axe(sam)), f"axe, un collègue écrit :\n{found}"

    sam.get_by_label("Message", exact=True).fill("Bonjour, cliquez sur « Mot de passe oublié ».")
    alex.get_by_label("Message", exact=True).press_sequentially(" votre mot de passe.")
    alex.get_by_role("button", name="Envoyer", exact=True).click()
    expect(alex.locator(".notice[role=status]:not([data-resumable-wait])")).to_contain_text(
        "Réponse envoyée"
    )
    new_reply = sam.locator("[data-new-reply]")
    expect(new_reply).to_contain_text("Nouveau message de Alex Agent dans ce ticket.")

    sam.get_by_role("button", name="Envoyer", exact=True).click()  # without reading it first
    held = sam.get_by_role("region", name="Un autre agent a répondu pendant que vous écriviez")
    expect(held).to_be_visible()
    expect(held).to_contain_text("Bonjour, réinitialisez votre mot de passe.")
    expect(held.get_by_label("Votre message")).to_have_value(
        "Bonjour, cliquez sur « Mot de passe oublié »."
    )
    sam.screenshot(path=artifacts / "support-reponse-retenue.png", full_page=True)
    assert not (found := axe(sam)), f"axe, réponse retenue :\n{found}"
    school.reload()
    expect(school.locator(".thread__message--support")).to_have_count(1)  # only Alex's

    held.get_by_label("Votre message").fill("En complément : le lien arrive par e-mail.")
    held.get_by_role("button", name="Envoyer ma réponse").click()
    expect(sam.locator(".notice[role=status]:not([data-resumable-wait])")).to_contain_text(
        "Réponse envoyée"
    )
    expect(sam.locator(".thread__message--support")).to_have_count(2)
    expect(sam.locator(".thread__event")).to_contain_text(["Alex Agent a pris le ticket en charge"])
    school.reload()
    expect(school.locator(".thread__message--support .thread__body")).to_have_text(
        ["Bonjour, réinitialisez votre mot de passe.", "En complément : le lien arrive par e-mail."]
    )


def test_staff_pages_fit_a_phone_and_work_by_keyboard(
    helpdesk: Server, visit: Callable[..., Page], axe: Callable[[Page], str], artifacts: Path
) -> None:
    helpdesk.establishment()
    helpdesk.agent()
    school = visit(helpdesk.url)
    helpdesk.log_in(school, "0750654D")
    reference = create_ticket(school)
    agent = visit(helpdesk.url)
    agent.set_viewport_size(PHONE)
    helpdesk.log_in(agent, "sam@cpro.fr")
    for path in ("/support", "/support?vue=non_assignes", f"/support/tickets/{reference}",
                 "/support/tickets/nouveau", "/rapport"):  # fmt: skip
        agent.goto(path)
        width = agent.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} : {width} px de large ({agent.evaluate(WIDEST)})"
        expect(agent.get_by_role("button", name="Déconnexion")).to_be_in_viewport()
        assert not (found := axe(agent)), f"axe à 390 px, {path} :\n{found}"
    agent.goto(f"/support/tickets/{reference}")
    agent.screenshot(path=artifacts / "support-ticket-390px.png", full_page=True)

    # A canned reply, found as the agent types and inserted by keyboard, filled for the ticket.
    agent.get_by_role("searchbox", name="Réponses types").press_sequentially("capture")
    found = agent.get_by_role("list", name="Réponses types trouvées").get_by_role("button")
    expect(found.filter(visible=True)).to_have_count(1)
    found.filter(visible=True).focus()
    agent.keyboard.press("Enter")
    message = agent.get_by_label("Message", exact=True)
    expect(message).to_be_focused()
    expect(message).to_have_value(re.compile(rf"^Bonjour Marie,\n.*{reference}", re.S))
    assert not (found_axe := axe(agent)), f"axe, réponse type insérée :\n{found_axe}"

    # By keyboard alone: take the ticket, then find it under "Mes tickets".
    take = agent.get_by_role("button", name="Me l'attribuer")
    for _ in range(120):
        agent.keyboard.press("Tab")
        if take.evaluate("el => el === document.activeElement"):
            break
    expect(take).to_be_focused()
    agent.keyboard.press("Enter")
    expect(agent.locator(".notice[role=status]:not([data-resumable-wait])")).to_have_text(
        "Attribution enregistrée."
    )
    expect(agent.get_by_role("complementary")).to_contain_text("Vous traitez ce ticket.")
    agent.goto("/support?vue=mes")
    expect(agent.get_by_role("link", name=re.compile(r"^Mes tickets 1"))).to_have_attribute(
        "aria-current", "page"
    )
    expect(agent.get_by_role("link", name=reference)).to_be_visible()


def test_the_administration_fits_a_phone_without_axe_violations(
    helpdesk: Server, visit: Callable[..., Page], axe: Callable[[Page], str]
) -> None:
    helpdesk.establishment()
    account, _ = accounts.save(
        helpdesk.app.state.services.engine, role="admin", login="ada@cpro.fr", establishment="",
        first_name="Ada", last_name="Admin", email="ada@cpro.fr",
    )  # fmt: skip
    accounts.set_password(helpdesk.app.state.services.engine, account, PASSWORD)
    admin = visit(helpdesk.url)
    admin.set_viewport_size(PHONE)
    helpdesk.log_in(admin, "ada@cpro.fr")
    admin.get_by_role("banner").get_by_role("link", name="Administration").click()
    expect(admin.get_by_role("heading", level=1)).to_have_text("Administration des comptes")
    width = admin.evaluate("document.documentElement.scrollWidth")
    widest = admin.evaluate(WIDEST)
    assert width <= PHONE["width"], f"/admin : {width} px de large ({widest})"
    assert not (found := axe(admin)), f"axe à 390 px, /admin :\n{found}"
    admin.get_by_role("searchbox", name="Code UAI, nom ou e-mail").fill("0750654D")
    admin.keyboard.press("Enter")
    expect(admin.get_by_role("status").filter(has_text="compte")).to_have_text("1 compte.")
    admin.get_by_role("button", name="Désactiver 0750654D").focus()
    admin.keyboard.press("Enter")
    expect(admin.locator(".notice[role=status]:not([data-resumable-wait])")).to_contain_text(
        "Compte désactivé"
    )
    assert not (found := axe(admin)), f"axe, après désactivation :\n{found}"
