"""Answers to ticket mails, through a real LMTP server (aiosmtpd), into the ticket's thread."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Callable, Iterator
from email.message import EmailMessage

import pytest
import sqlalchemy as sa
from conftest import (
    SUPPORT_FILES,
    Web,
    as_agent,
    help_desk,
    log_in,
    page,
    school_ticket,
)

from kb import tables
from kb.helpdesk import inbound
from kb.helpdesk.lmtp import Receiver

BASE = "reponse@cpro-education.fr"


@pytest.fixture
def web(make_web: Callable[..., Web], database_url: str) -> Web:
    web = help_desk(make_web(SUPPORT_FILES, database_url=database_url, max_upload_bytes=2048))
    return web


@pytest.fixture
def lmtp(web: Web) -> Iterator[tuple[str, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    services = web.services
    receiver = Receiver(services.settings, services.engine, services.store, services.secret_key,
                        services.links, port=port)  # fmt: skip
    receiver.start()
    yield "127.0.0.1", port
    receiver.stop()


def mail(web: Web, reference: str, body: str, sender: str = "marie@example.fr",
         **headers: str) -> EmailMessage:  # fmt: skip
    message = EmailMessage()
    message["From"] = f"Marie Curie <{sender}>"
    message["To"] = inbound.reply_address(web.services.secret_key, BASE, reference)
    message["Subject"] = f"Re: [{reference}] Réponse du support"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def deliver(server: tuple[str, int], message: EmailMessage, sender: str = "marie@example.fr"
            ) -> tuple[int, str]:  # fmt: skip
    """What the MTA would do: LMTP to kb; the reply (a 5xx becomes the sender's bounce)."""
    with smtplib.LMTP(*server) as client:
        try:
            client.send_message(message, from_addr=sender)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            return code, text.decode()
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code, exc.smtp_error.decode()
    return 250, ""


def thread_of(web: Web, reference: str) -> list[str]:
    with web.services.engine.connect() as connection:
        ticket_id = connection.execute(
            sa.select(tables.tickets.c.id).where(tables.tickets.c.reference == reference)
        ).scalar()
        return list(
            connection.execute(
                sa.select(tables.messages.c.body)
                .where(tables.messages.c.ticket_id == ticket_id)
                .order_by(tables.messages.c.id)
            ).scalars()
        )


def test_an_answer_by_mail_joins_the_thread_without_history_or_signature(
    web: Web, lmtp: tuple[str, int]
) -> None:
    log_in(web)
    reference = school_ticket(web)
    message = mail(web, reference, (
        "Merci, cela fonctionne à nouveau.\nBonne journée\n\n-- \nMarie Curie\nProviseure\n\n"
        "Le lun. 30 nov. 2026 à 10:02, Support <support@cpro.fr> a écrit :\n> Essayez ceci.\n"
    ))  # fmt: skip
    message.add_attachment(b"%PDF-1.4 capture", maintype="application", subtype="pdf",
                           filename="capture écran.pdf")  # fmt: skip
    assert deliver(lmtp, message) == (250, "")
    assert thread_of(web, reference)[-1] == "Merci, cela fonctionne à nouveau.\nBonne journée"
    thread = page(web, f"/tickets/{reference}")
    assert thread.link("capture écran.pdf") and thread.terms["Statut"] == "En cours de traitement"
    as_agent(web)
    assert "Merci, cela fonctionne à nouveau." in page(web, f"/support/tickets/{reference}").text


def test_mail_that_cannot_be_placed_is_refused_with_its_reason(
    web: Web, lmtp: tuple[str, int]
) -> None:
    log_in(web)
    reference = school_ticket(web)
    stranger = mail(web, reference, "Bonjour", sender="pirate@example.com")
    code, text = deliver(lmtp, stranger, sender="pirate@example.com")
    assert code == 550 and "n'est pas celle du compte qui a ouvert le ticket" in text
    forged = mail(web, reference, "Bonjour")
    forged.replace_header("To", f"reponse+{reference}.000000000000@cpro-education.fr")
    code, text = deliver(lmtp, forged)
    assert code == 550 and "Adresse de reponse invalide" in text
    unknown = mail(web, reference, "Bonjour")
    unknown.replace_header("To", "contact@cpro-education.fr")
    assert deliver(lmtp, unknown)[0] == 550
    big = mail(web, reference, "Voici le fichier")
    big.add_attachment(b"x" * 4096, maintype="application", subtype="octet-stream",
                       filename="gros.bin")  # fmt: skip
    code, text = deliver(lmtp, big)
    assert code == 550 and "Pieces jointes trop volumineuses" in text
    assert len(thread_of(web, reference)) == 1  # nothing was added
    assert not list((web.settings.data_dir / "attachments").rglob("mail-*"))


def test_auto_replies_and_bounces_are_dropped_without_a_bounce(
    web: Web, lmtp: tuple[str, int]
) -> None:
    log_in(web)
    reference = school_ticket(web)
    away = mail(web, reference, "Je suis absente jusqu'au 4 janvier.",
                Auto_Submitted="auto-replied")  # fmt: skip
    assert deliver(lmtp, away) == (250, "")
    listed = mail(web, reference, "Lettre d'information", Precedence="bulk")
    assert deliver(lmtp, listed) == (250, "")
    office = mail(web, reference, "Absent")
    office.replace_header("Subject", "Réponse automatique : absent")
    assert deliver(lmtp, office) == (250, "")
    bounce = mail(web, reference, "Delivery failed")
    assert deliver(lmtp, bounce, sender="") == (250, "")  # the null sender of a bounce
    assert len(thread_of(web, reference)) == 1


def test_an_agent_may_answer_by_mail_and_a_closed_ticket_refuses(
    web: Web, lmtp: tuple[str, int]
) -> None:
    log_in(web)
    reference = school_ticket(web)
    answer = mail(web, reference, "Essayez avec Firefox.", sender="sam@cpro.fr")
    assert deliver(lmtp, answer, sender="sam@cpro.fr") == (250, "")
    thread = page(web, f"/tickets/{reference}")
    assert "Essayez avec Firefox." in thread.text
    assert thread.terms["Statut"] == "En attente de votre réponse"
    with web.services.engine.begin() as connection:
        connection.execute(
            sa.update(tables.tickets)
            .where(tables.tickets.c.reference == reference)
            .values(status="ferme")
        )
    code, text = deliver(lmtp, mail(web, reference, "Encore une question"))
    assert code == 550 and "Ce ticket est ferme" in text
