"""A ticket's e-mail round trip through real local servers: the agent's answer leaves by SMTP
(aiosmtpd), the establishment answers it with "Répondre" through kb's LMTP receiver (a real
socket), the answer shows in the agent's thread and support is told by mail."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable, Iterator
from email.message import EmailMessage

import pytest
from conftest import Inbox
from playwright.sync_api import Page, expect

from kb.helpdesk.lmtp import Receiver
from kb.testing import free_port

from .conftest import Server
from .test_support import SUBJECT, create_ticket

pytestmark = pytest.mark.browser


@pytest.fixture
def helpdesk(make_server: Callable[..., Server], smtp: tuple[Inbox, int]) -> Server:
    return make_server(smtp_url=f"smtp://127.0.0.1:{smtp[1]}")


@pytest.fixture
def lmtp(helpdesk: Server) -> Iterator[tuple[str, int]]:
    """`kb lmtp` as the mail server would reach it: on its own port, beside the web."""
    services = helpdesk.app.state.services
    port = free_port()
    receiver = Receiver(services.settings, services.engine, services.store, services.secret_key,
                        services.links, port=port)  # fmt: skip
    receiver.start()
    yield "127.0.0.1", port
    receiver.stop()


def delivered(helpdesk: Server, inbox: Inbox, to: str, subject: str) -> EmailMessage:
    """The one mail to `to` whose subject holds `subject`, once kb's sender has sent the queue
    (in the background when serving for real) to the SMTP server."""
    helpdesk.app.state.services.mail_sender.deliver()
    found = [m for m in inbox.messages if to in str(m["To"]) and subject in str(m["Subject"])]
    assert len(found) == 1, [(str(m["To"]), str(m["Subject"])) for m in inbox.messages]
    return found[0]  # type: ignore[no-any-return]


def text_of(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr,no-any-return]


def test_an_answer_by_mail_reaches_the_agents_thread_and_support_is_told(
    helpdesk: Server,
    smtp: tuple[Inbox, int],
    lmtp: tuple[str, int],
    visit: Callable[..., Page],
) -> None:
    inbox = smtp[0]
    helpdesk.establishment()
    helpdesk.agent()
    school = visit(helpdesk.url)
    helpdesk.log_in(school, "0750654D")
    reference = create_ticket(school)

    agent = visit(helpdesk.url)
    helpdesk.log_in(agent, "sam@cpro.fr")
    agent.goto(f"/support/tickets/{reference}")
    agent.get_by_label("Message", exact=True).fill("Videz le cache du navigateur, puis réessayez.")
    agent.get_by_role("button", name="Envoyer", exact=True).click()
    expect(agent.locator(".notice[role=status]:not([data-resumable-wait])")).to_contain_text(
        "Réponse envoyée"
    )

    answer = delivered(helpdesk, inbox, "marie@example.fr", "Réponse du support")
    assert "Videz le cache du navigateur, puis réessayez." in text_of(answer)
    assert reference in str(answer["Reply-To"])

    # Marie clicks "Répondre": her mail server hands the answer to kb over LMTP.
    reply = EmailMessage()
    reply["From"] = "Marie Curie <marie@example.fr>"
    reply["To"] = answer["Reply-To"]
    reply["Subject"] = f"Re: {answer['Subject']}"
    reply["In-Reply-To"] = answer["Message-ID"]
    reply["References"] = f"{answer['References']} {answer['Message-ID']}"
    reply.set_content(
        "C'est réglé, merci !\n\n-- \nMarie Curie\n\n"
        f"Le 2 déc. 2026, Assistance <{answer['From']}> a écrit :\n> Videz le cache du navigateur"
    )
    with smtplib.LMTP(*lmtp) as mta:
        refused = mta.send_message(reply, from_addr="marie@example.fr")
    assert refused == {}

    # The agent's open page is told of the new message, and shows it once reloaded.
    banner = agent.get_by_role("link", name="Afficher les échanges à jour")
    expect(banner).to_be_visible()
    banner.click()
    thread = agent.get_by_role("region", name="Échanges")
    expect(thread).to_contain_text("C'est réglé, merci !")
    expect(thread).not_to_contain_text("a écrit :")  # the quoted history is cut

    # Sam handles the ticket (his reply took it): the notice is his, and opens his page.
    news = delivered(helpdesk, inbox, "sam@cpro.fr", "Réponse de l'établissement")
    assert news["Subject"] == f"[{reference}] Réponse de l'établissement : {SUBJECT}"
    assert "C'est réglé, merci !" in text_of(news) and "a écrit :" not in text_of(news)
    link = re.findall(r"https?://\S+", text_of(news))[-1]
    assert link == f"{helpdesk.url}/support/tickets/{reference}"
    agent.goto(link)
    expect(agent.get_by_role("region", name="Échanges")).to_contain_text("C'est réglé, merci !")

    school.goto(f"/tickets/{reference}")
    expect(school.get_by_role("main")).to_contain_text("C'est réglé, merci !")
