"""Support agents: the queue, a ticket, a reply with a link to an article found as they type;
the establishment then reads the reply and follows the link. The editors' report."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .conftest import Server

pytestmark = pytest.mark.browser

SUBJECT = "Impossible de me connecter"
TICKET_URL = re.compile(r"/tickets/(T-\d{4}-\d{6})\?cree=1$")


def create_ticket(page: Page) -> str:
    """The establishment's ticket, sent from the form; its reference."""
    page.goto("/tickets/nouveau?categorie=compte-utilisateur")
    page.get_by_label("Objet").fill(SUBJECT)
    page.get_by_label("Message").fill("Le mot de passe est refusé depuis ce matin.")
    page.get_by_role("button", name="Envoyer le ticket").click()
    expect(page).to_have_url(TICKET_URL)
    return TICKET_URL.search(page.url)[1]  # type: ignore[index]


def test_an_agent_answers_with_a_linked_article_and_the_establishment_follows_it(
    helpdesk: Server,
    visit: Callable[..., Page],
    axe: Callable[[Page], str],
    artifacts: Path,
) -> None:
    helpdesk.establishment()
    helpdesk.agent()
    school = visit(helpdesk.url)
    helpdesk.log_in(school, "0750654D")
    reference = create_ticket(school)

    agent = visit(helpdesk.url)
    helpdesk.log_in(agent, "sam@cpro.fr")
    agent.get_by_role("banner").get_by_role("link", name="Support", exact=True).click()
    expect(agent.get_by_role("heading", level=1)).to_have_text("File des tickets")
    row = agent.get_by_role("row").filter(has=agent.get_by_role("link", name=reference))
    expect(row).to_contain_text(SUBJECT)
    expect(row).to_contain_text("Lycée Louis-le-Grand")
    expect(row).to_contain_text("Nouveau")
    agent.screenshot(path=artifacts / "support-file.png", full_page=True)
    assert not (found := axe(agent)), f"axe, file du support :\n{found}"

    row.get_by_role("link", name=reference).click()
    expect(agent.get_by_role("heading", level=1)).to_have_text(SUBJECT)
    expect(agent.get_by_role("main")).to_contain_text("Lycée Louis-le-Grand (0750654D)")
    assert not (found := axe(agent)), f"axe, ticket côté support :\n{found}"

    message = agent.get_by_label("Message", exact=True)
    message.fill("Bonjour, la marche à suivre est décrite ici :")
    agent.get_by_label("Insérer un lien vers un article").press_sequentially("mot de pa")
    results = agent.get_by_role("list", name="Articles trouvés")
    insert = results.get_by_role("button", name=re.compile("^Insérer « .* »$")).first
    expect(insert).to_be_visible()
    title = re.fullmatch(r"Insérer « (.*) »", insert.inner_text())[1]  # type: ignore[index]
    url = results.locator("code").first.inner_text()
    assert re.fullmatch(re.escape(helpdesk.url) + r"/articles/[\w-]+", url), url
    expect(agent.get_by_role("status").filter(has_text="trouvé")).to_contain_text("article(s)")
    assert not (found := axe(agent)), f"axe, articles trouvés :\n{found}"

    insert.click()
    expect(message).to_have_value(
        f"Bonjour, la marche à suivre est décrite ici :\n{title} : {url}\n"
    )
    expect(message).to_be_focused()  # back where the agent writes
    expect(agent.get_by_role("status").filter(has_text="inséré")).to_have_text(
        "Lien inséré dans le message."
    )
    agent.get_by_role("button", name="Envoyer", exact=True).click()
    expect(agent).to_have_url(re.compile(rf"/support/tickets/{reference}\?repondu=1(#fil)?$"))
    expect(agent.locator(".notice--success[role=status]")).to_have_text(
        "Réponse envoyée : l'établissement est prévenu par e-mail."
    )
    expect(agent.locator(".thread__message--support")).to_have_count(1)
    expect(agent.get_by_role("alert")).to_be_hidden()  # no "L'envoi a échoué", no second try

    mail = helpdesk.outbox()[-1]
    assert mail["Subject"] == f"[{reference}] Réponse du support : {SUBJECT}"
    school.goto(helpdesk.link_in_last_mail())
    expect(school.get_by_role("heading", level=1)).to_have_text(SUBJECT)
    expect(school.locator("dl.details dt:text-is('Statut') + dd")).to_have_text(
        "En attente de votre réponse"
    )
    reply = school.locator(".thread__message--support")
    expect(reply.locator(".thread__meta")).to_contain_text("Équipe d'assistance — Sam Support")
    expect(reply.locator(".thread__body")).to_contain_text(f"{title} : {url}")
    assert not (found := axe(school)), f"axe, ticket avec la réponse :\n{found}"
    reply.get_by_role("link", name=url).click()
    expect(school).to_have_url(url)
    expect(school.get_by_role("heading", level=1)).to_have_text(title)


def test_the_editors_report_passes_axe(
    helpdesk: Server, visit: Callable[..., Page], axe: Callable[[Page], str], artifacts: Path
) -> None:
    helpdesk.establishment()
    helpdesk.agent()
    school = visit(helpdesk.url)
    helpdesk.log_in(school, "0750654D")
    create_ticket(school)
    agent = visit(helpdesk.url)
    helpdesk.log_in(agent, "sam@cpro.fr")
    agent.get_by_role("banner").get_by_role("link", name="Rapport").click()
    expect(agent.get_by_role("heading", level=1)).to_have_text("Rapport des éditeurs")
    expect(agent.get_by_role("img").first).to_be_visible()  # the chart, drawn on the server
    per_category = agent.get_by_role("region", name="Tickets créés par catégorie")
    expect(per_category.get_by_role("row").filter(has_text="Compte utilisateur")).to_contain_text(
        "1"
    )
    agent.screenshot(path=artifacts / "rapport.png", full_page=True)
    assert not (found := axe(agent)), f"axe, rapport :\n{found}"
