"""Ticket mails as the establishment gets them: acknowledged with a due date, answers with their
text, one thread per ticket, and "Répondre" answers the ticket through `kb lmtp`."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import EmailMessage

import pytest
from conftest import Web, activated_account, log_in, outbox
from test_inbound import deliver, lmtp, thread_of
from test_support import FILES, agent, as_agent, new_ticket

from kb.helpdesk import inbound

__all__ = ["lmtp"]  # the LMTP server fixture, shared with test_inbound


@pytest.fixture
def web(make_web: Callable[..., Web], database_url: str) -> Web:
    web = make_web(FILES, database_url=database_url)
    activated_account(web)
    agent(web)
    return web


def to(message: EmailMessage, recipient: str) -> bool:
    return recipient in str(message["To"])


def test_a_new_ticket_is_acknowledged_with_its_reference_and_due_date(web: Web) -> None:
    log_in(web)
    reference = new_ticket(web, "Impossible de me connecter")
    mails = [m for m in outbox(web) if reference in str(m["Subject"])]
    [ack] = [m for m in mails if to(m, "marie@example.fr")]
    [team] = [m for m in mails if to(m, web.settings.support_email)]
    assert ack["Subject"] == f"[{reference}] Demande enregistrée : Impossible de me connecter"
    text = ack.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"référence {reference}" in text and "catégorie « Compte utilisateur »" in text
    assert re.search(r"vous répondra au plus tard le \w+ \d+", text)
    assert f"/tickets/{reference}" in text
    secret = web.services.secret_key
    sender = re.search(r"<(.+)>", web.settings.mail_from)[1]  # type: ignore[index]
    assert ack["Reply-To"] == inbound.reply_address(secret, sender, reference)
    # One thread: support's copy refers to the acknowledgment, which starts it.
    assert team["References"] == ack["Message-ID"] == team["In-Reply-To"]
    assert f"/support/tickets/{reference}" in team.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_supports_answer_is_in_the_mail_with_its_attachments_names(web: Web) -> None:
    log_in(web)
    reference = new_ticket(web)
    [ack] = [m for m in outbox(web) if "Demande enregistrée" in str(m["Subject"])]
    as_agent(web)
    web.client.get(f"/support/tickets/{reference}")
    response = web.client.post(
        f"/support/tickets/{reference}/reponses",
        data={"csrf": web.client.cookies["kb_csrf"], "message": "Essayez avec Firefox."},
        files=[("fichiers", ("procédure.pdf", b"%PDF-1.4", "application/pdf"))],
    )
    assert response.status_code == 303
    [answer] = [m for m in outbox(web) if "Réponse du support" in str(m["Subject"])]
    text = answer.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Essayez avec Firefox." in text and "Pièce jointe : procédure.pdf" in text
    assert answer["In-Reply-To"] == ack["Message-ID"] and answer["Reply-To"] == ack["Reply-To"]


def test_answering_the_acknowledgment_by_mail_adds_to_the_thread(
    web: Web, lmtp: tuple[str, int]
) -> None:
    log_in(web)
    reference = new_ticket(web)
    [ack] = [m for m in outbox(web) if "Demande enregistrée" in str(m["Subject"])]
    answer = EmailMessage()
    answer["From"] = "Marie Curie <marie@example.fr>"
    answer["To"] = ack["Reply-To"]
    answer["Subject"] = f"Re: {ack['Subject']}"
    answer["In-Reply-To"] = ack["Message-ID"]
    answer.set_content("J'ajoute : le message d'erreur dit « compte bloqué ».")
    assert deliver(lmtp, answer) == (250, "")
    assert thread_of(web, reference)[-1] == "J'ajoute : le message d'erreur dit « compte bloqué »."


def test_a_ticket_opened_by_support_tells_the_establishment(web: Web) -> None:
    as_agent(web)
    web.client.get("/support/tickets/nouveau")
    response = web.client.post(
        "/support/tickets",
        data={"csrf": web.client.cookies["kb_csrf"], "uai": "0750654D", "canal": "telephone",
              "categorie": "abonnement", "sujet": "Renouvellement", "message": "Appel de 10 h."},
        files=[("fichiers", ("", b"", "x"))],
    )  # fmt: skip
    assert response.status_code == 303, response.text
    [ack] = [m for m in outbox(web) if "Demande enregistrée : Renouvellement" in str(m["Subject"])]
    assert to(ack, "marie@example.fr")
