"""Ticket mails as the establishment gets them: acknowledged with a due date, answers with their
text, one thread per ticket, and "Répondre" answers the ticket through `kb lmtp`."""

from __future__ import annotations

import re
from email.message import EmailMessage

import pytest
from conftest import Web, as_agent, link_in, log_in, outbox, school_ticket
from test_inbound import deliver, lmtp, thread_of

from kb.helpdesk import inbound

__all__ = ["lmtp"]  # the LMTP server fixture, shared with test_inbound


@pytest.fixture
def web(desk: Web) -> Web:
    return desk


def to(message: EmailMessage, recipient: str) -> bool:
    return recipient in str(message["To"])


def test_a_new_ticket_is_acknowledged_with_its_reference_and_due_date(web: Web) -> None:
    log_in(web)
    reference = school_ticket(web, "Impossible de me connecter")
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
    reference = school_ticket(web)
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
    reference = school_ticket(web)
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


def news_for_support(web: Web) -> list[EmailMessage]:
    return [m for m in outbox(web) if "de l'établissement" in str(m["Subject"])
            or "par l'établissement" in str(m["Subject"])]  # fmt: skip


def text_of(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr,no-any-return]


def test_support_hears_of_the_establishments_answer_and_resolution(web: Web) -> None:
    log_in(web)
    reference = school_ticket(web, "Impossible de me connecter")
    [ack] = [m for m in outbox(web) if "Demande enregistrée" in str(m["Subject"])]
    csrf = web.client.cookies["kb_csrf"]
    answered = web.client.post(
        f"/tickets/{reference}/reponses",
        data={"csrf": csrf, "message": "J'ajoute une capture."},
        files=[("fichiers", ("écran.png", b"\x89PNG", "image/png"))],
    )
    assert answered.status_code == 303
    [news] = news_for_support(web)  # nobody handles it yet: the support address
    assert to(news, web.settings.support_email)
    assert (
        news["Subject"] == f"[{reference}] Réponse de l'établissement : Impossible de me connecter"
    )
    text = text_of(news)
    assert "J'ajoute une capture." in text and "Pièce jointe : écran.png" in text
    assert "Marie Curie (Lycée Louis-le-Grand, 0750654D) a répondu" in text
    assert link_in(news) == f"/support/tickets/{reference}"
    assert news["In-Reply-To"] == ack["Message-ID"] == news["References"]

    as_agent(web)  # Sam answers: his first reply takes the ticket; nothing to support for it
    web.client.get(f"/support/tickets/{reference}")
    web.client.post(
        f"/support/tickets/{reference}/reponses",
        data={"csrf": web.client.cookies["kb_csrf"], "message": "Merci, je regarde."},
        files=[("fichiers", ("", b"", "x"))],
    )
    assert len(news_for_support(web)) == 1

    web.client.cookies.clear()
    log_in(web)
    csrf = web.client.cookies["kb_csrf"]
    web.client.post(f"/tickets/{reference}/reponses", data={"csrf": csrf, "message": "Réglé !"},
                    files=[("fichiers", ("", b"", "x"))])  # fmt: skip
    resolved = web.client.post(
        f"/tickets/{reference}/statut", data={"csrf": csrf, "statut": "resolu"}
    )
    assert resolved.status_code == 303
    again = web.client.post(f"/tickets/{reference}/statut", data={"csrf": csrf, "statut": "resolu"})
    assert again.status_code == 303  # already resolved: support is not told twice
    _, answer, resolution = news_for_support(web)
    assert to(answer, "sam@cpro.fr") and "Réglé !" in text_of(answer)  # Sam handles it now
    assert to(resolution, "sam@cpro.fr")
    assert resolution["Subject"] == (
        f"[{reference}] Résolu par l'établissement : Impossible de me connecter"
    )
    assert "a marqué le ticket comme résolu" in text_of(resolution)
    assert link_in(resolution) == f"/support/tickets/{reference}"


def test_answers_by_mail_tell_the_other_side(web: Web, lmtp: tuple[str, int]) -> None:
    log_in(web)
    reference = school_ticket(web)
    [ack] = [m for m in outbox(web) if "Demande enregistrée" in str(m["Subject"])]
    answer = EmailMessage()
    answer["From"] = "Marie Curie <marie@example.fr>"
    answer["To"] = ack["Reply-To"]
    answer["Subject"] = f"Re: {ack['Subject']}"
    answer.set_content("Toujours bloquée ce matin.\n\nLe lun. 30 nov., a écrit :\n> ...")
    assert deliver(lmtp, answer) == (250, "")
    [news] = news_for_support(web)
    assert to(news, web.settings.support_email) and "Toujours bloquée ce matin." in text_of(news)
    assert link_in(news) == f"/support/tickets/{reference}"

    # An agent answering the notice by mail: the establishment gets the answer, as from the web.
    reply = EmailMessage()
    reply["From"] = "Sam Support <sam@cpro.fr>"
    reply["To"] = news["Reply-To"]
    reply["Subject"] = f"Re: {news['Subject']}"
    reply.set_content("Le compte est débloqué.")
    assert deliver(lmtp, reply, sender="sam@cpro.fr") == (250, "")
    [answered] = [m for m in outbox(web) if "Réponse du support" in str(m["Subject"])]
    assert to(answered, "marie@example.fr") and "Le compte est débloqué." in text_of(answered)
    assert len(news_for_support(web)) == 1
