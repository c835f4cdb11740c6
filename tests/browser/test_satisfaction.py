"""The satisfaction flow: support resolves, the establishment rates on the page and from the
mail's link, support and editors read the opinion."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from kb.helpdesk import satisfaction

from .conftest import Server
from .test_support import create_ticket

pytestmark = pytest.mark.browser


def test_an_establishment_rates_a_resolved_ticket_and_support_reads_it(
    helpdesk: Server, visit: Callable[..., Page], axe: Callable[[Page], str]
) -> None:
    helpdesk.establishment()
    helpdesk.agent()
    school = visit(helpdesk.url)
    helpdesk.log_in(school, "0750654D")
    reference = create_ticket(school)

    agent = visit(helpdesk.url)
    helpdesk.log_in(agent, "sam@cpro.fr")
    agent.goto(f"/support/tickets/{reference}")
    agent.get_by_label("Message", exact=True).fill("Le mot de passe est réinitialisé.")
    agent.get_by_label("Statut après l'envoi").select_option("resolu")
    agent.get_by_role("button", name="Envoyer", exact=True).click()
    expect(agent.locator(".notice[role=status]:not([data-resumable-wait])")).to_contain_text(
        "Réponse envoyée"
    )

    school.goto(f"/tickets/{reference}")
    opinion = school.get_by_role("region", name="Votre avis")
    expect(opinion.get_by_role("group")).to_contain_text(
        "Êtes-vous satisfait de la réponse du support ?"
    )
    assert not (found := axe(school)), f"axe, avis à donner :\n{found}"
    opinion.get_by_label("Pas satisfait").check()
    opinion.get_by_label("Commentaire (facultatif)").fill("Il a fallu trois jours.")
    opinion.get_by_role("button", name="Envoyer mon avis").click()
    thanks = school.locator(".notice[role=status]:not([data-resumable-wait])")
    expect(thanks).to_have_text("Merci : votre avis est enregistré.")
    expect(thanks).to_be_focused()  # not <body>: the next Tab goes on from what was done
    expect(school.get_by_role("region", name="Votre avis")).to_contain_text(
        "Votre avis : « Pas satisfait » — Il a fallu trois jours."
    )

    # The mail's link: no login, the click's choice ready, confirmed on the page.
    token = satisfaction.link_token(helpdesk.app.state.services.secret_key, reference)
    anyone = visit(helpdesk.url)
    anyone.goto(f"/avis/{reference}/{token}?note=satisfait")
    expect(anyone.get_by_label("Satisfait", exact=True)).to_be_checked()
    assert not (found := axe(anyone)), f"axe, lien d'avis :\n{found}"
    anyone.get_by_role("button", name="Envoyer mon avis").click()
    expect(anyone.locator(".notice[role=status]:not([data-resumable-wait])")).to_contain_text(
        "Merci : votre avis est enregistré"
    )

    agent.goto(f"/support/tickets/{reference}")
    expect(agent.get_by_role("complementary")).to_contain_text("Avis de l'établissement")
    expect(agent.get_by_role("complementary")).to_contain_text("Satisfait")
    agent.goto("/rapport")
    per_agent = agent.get_by_role("table").filter(has_text="Par agent")
    expect(per_agent.get_by_role("row").filter(has_text="Sam Support")).to_contain_text("100 %")
    assert not (found := axe(agent)), f"axe, rapport avec la satisfaction :\n{found}"
