"""Tickets opened by support for an establishment that phoned or wrote."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import Page, Web, activated_account, as_agent, log_in, page

from kb import tables
from kb.helpdesk import accounts


@pytest.fixture
def web(desk: Web) -> Web:
    return desk


def open_for(web: Web, **fields: str) -> object:
    data = {"csrf": web.client.cookies["kb_csrf"], "jeton": "t1", "uai": "0750654d",
            "canal": "telephone", "categorie": "compte-utilisateur", "sujet": "Appel : connexion",
            "message": "La directrice ne peut plus se connecter depuis lundi.", **fields}  # fmt: skip
    return web.client.post("/support/tickets", data=data, files=[("fichiers", ("", b"", "x"))])


def test_an_agent_opens_a_ticket_for_an_establishment_that_phoned(web: Web) -> None:
    as_agent(web)
    form = web.client.get("/support/tickets/nouveau")
    assert form.status_code == 200 and "Ouvrir un ticket pour un établissement" in Page(form).text
    assert "/support/tickets/nouveau" in [href for href, _ in page(web, "/support").links]
    opened = open_for(web)
    location = opened.headers["location"]  # type: ignore[attr-defined]
    assert location.endswith("?ouvert=1")
    reference = location.split("?")[0].rsplit("/", 1)[1]
    assert open_for(web).headers["location"].startswith(f"/support/tickets/{reference}")  # type: ignore[attr-defined]
    with web.services.engine.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(tables.tickets)).scalar() == 1
        )
    opened_page = page(web, location)
    assert "Ticket ouvert pour l'établissement" in opened_page.text
    assert opened_page.terms["Reçu par"] == "Téléphone, saisi par le support"
    assert "Vous traitez ce ticket." in opened_page.text
    assert "Sam Support a pris le ticket en charge" in opened_page.text
    assert "La directrice ne peut plus se connecter depuis lundi." in opened_page.text

    web.client.cookies.clear()
    log_in(web)
    assert reference in page(web, "/tickets").text
    mine = page(web, f"/tickets/{reference}")
    assert "Appel : connexion" in mine.text and mine.terms["Reçu par"].startswith("Téléphone")
    assert web.client.get("/support/tickets/nouveau").status_code == 403


def test_every_problem_of_the_form_is_said_at_once(web: Web) -> None:
    disabled = activated_account(web, "0750655" + accounts.uai_check_letter("0750655"),
                                 email="x@example.fr")  # fmt: skip
    accounts.disable(web.services.engine, disabled.login)
    as_agent(web)
    free = "0750656" + accounts.uai_check_letter("0750656")
    cases = {
        "": "Indiquez le code UAI de l'établissement qui a appelé ou écrit.",
        "12": "n'est pas un code UAI",
        free: f"Aucun établissement n'a le code UAI {free}.",
        "sam@cpro.fr": "n'est pas un code UAI",
        disabled.login: f"Le compte de l'établissement {disabled.login} est désactivé.",
    }
    for uai, message in cases.items():
        refused = open_for(web, uai=uai, jeton=f"j-{uai}", canal="fax", sujet="")
        assert refused.status_code == 400  # type: ignore[attr-defined]
        shown = Page(refused)  # type: ignore[arg-type]
        assert message in shown.text, uai
        assert "Indiquez comment la demande est arrivée : téléphone ou e-mail." in shown.text
        assert "Indiquez l'objet de votre demande" in shown.text
        typed = shown.field(name="message")["value"]
        assert typed == "La directrice ne peut plus se connecter depuis lundi."
    with web.services.engine.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(tables.tickets)).scalar() == 0
        )
