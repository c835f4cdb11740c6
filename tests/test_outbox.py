"""The mail outbox: queued with what causes it, sent by the background sender through a real
SMTP server (aiosmtpd) that goes down and comes back, exactly once, or abandoned and shown."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from conftest import PASSWORD, Inbox, Web, activated_account, log_in, outbox, page
from starlette.testclient import TestClient

from kb import db, tables
from kb.config import Settings
from kb.helpdesk import accounts
from kb.helpdesk.mail import Mail, Mailer
from kb.helpdesk.outbox import Sender, enqueue, now, waiting
from kb.testing import free_port
from kb.web.app import create_app


class Smtp:
    """A real SMTP server on a fixed port that can be stopped and started again."""

    def __init__(self, handler: Any = None) -> None:
        self.inbox, self.port = handler or Inbox(), free_port()
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()
            self.controller = None

    def ids(self) -> list[str]:
        return [m["Message-ID"] for m in self.inbox.messages]


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp()
    yield server
    server.stop()


def agent(web: Web) -> None:
    account, _ = accounts.save(web.services.engine, role="agent", login="sam@cpro.fr",
                               establishment="", first_name="Sam", last_name="Support",
                               email="sam@cpro.fr")  # fmt: skip
    accounts.set_password(web.services.engine, account, PASSWORD)


def new_ticket(web: Web, subject: str) -> Any:
    return web.client.post(
        "/tickets",
        data={"csrf": web.client.cookies["kb_csrf"], "jeton": subject, "categorie": "abonnement",
              "sujet": subject, "message": "Le bouton ne répond pas."},
        files=[("fichiers", ("", b"", "application/octet-stream"))],
    )  # fmt: skip


def queued(web: Web) -> list[sa.Row[Any]]:
    with web.services.engine.connect() as connection:
        return list(connection.execute(sa.select(tables.mail_outbox).order_by("id")).all())


@pytest.fixture
def web(make_web: Callable[..., Web], database_url: str, smtp: Smtp) -> Web:
    web = make_web({}, database_url=database_url, smtp_url=smtp.url)
    activated_account(web)
    log_in(web)
    return web


def test_a_ticket_is_created_while_smtp_is_down_and_its_mail_leaves_once_it_is_back(
    web: Web, smtp: Smtp
) -> None:
    response = new_ticket(web, "Renouvellement bloqué")
    assert response.status_code == 303  # nothing listens on the SMTP port: the ticket is safe
    acknowledgment, row = queued(web)  # to the establishment, then to support
    assert "marie@example.fr" in acknowledgment.recipient
    assert row.subject.endswith("Renouvellement bloqué") and row.sent_at is None
    sender: Sender = web.services.mail_sender
    assert sender.deliver().retried == 2
    acknowledgment, row = queued(web)
    assert row.attempts == 1 and "injoignable" in row.last_error
    retry_at = max(db_time(r.next_attempt_at) for r in (acknowledgment, row))
    assert now() + dt.timedelta(seconds=20) < retry_at <= now() + dt.timedelta(seconds=31)
    smtp.start()
    assert sender.deliver().sent == 0  # not yet due: the backoff holds
    assert sender.deliver(at=retry_at).sent == 2
    assert sender.deliver(at=retry_at + dt.timedelta(hours=1)).sent == 0
    [mail] = [m for m in smtp.inbox.messages if m["To"] == "support@cpro-education.fr"]
    assert mail["Message-ID"] == row.message_id  # fixed when queued, the same on every attempt
    assert mail["Subject"] == f"[{row.subject.split(']')[0][1:]}] Renouvellement bloqué"
    assert mail["To"] == "support@cpro-education.fr"
    _, row = queued(web)
    assert row.sent_at is not None and row.next_attempt_at is None and row.attempts == 2


def db_time(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def test_a_mail_leaves_only_with_the_transaction_that_causes_it(web: Web) -> None:
    engine = web.services.engine
    mail = Mail(to="marie@example.fr", subject="S", paragraphs=("P",), sender="a@b.fr")
    with pytest.raises(RuntimeError), engine.begin() as connection:
        enqueue(connection, mail)
        raise RuntimeError("the ticket failed")
    assert queued(web) == []
    # The same form sent twice makes one ticket, and its mails once: support's and the
    # establishment's acknowledgment.
    assert new_ticket(web, "Deux fois").status_code == 303
    assert new_ticket(web, "Deux fois").status_code == 303
    assert len(queued(web)) == 2


def test_support_sees_an_abandoned_mail_and_kb_mail_queue_says_why(
    web: Web, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    new_ticket(web, "Facture introuvable")
    sender: Sender = web.services.mail_sender
    sender.deliver()  # SMTP down: one attempt failed
    monkeypatch.setenv("KB_DATABASE_URL", web.settings.database)
    monkeypatch.setenv("KB_DATA_DIR", str(web.settings.data_dir))
    monkeypatch.setenv("KB_SMTP_URL", web.settings.smtp_url)
    listed = cli("mail", "queue")
    assert listed.status == 0
    assert "nouvel essai prévu" in listed.out and "Facture introuvable" in listed.out
    assert "injoignable" in listed.out and "2 e-mail(s) en attente, 0 abandonné(s)" in listed.out
    # Still down when the give-up time (KB_MAIL_GIVE_UP_HOURS, 48 h) has passed: abandoned.
    later = now() + dt.timedelta(hours=49)
    assert sender.deliver(at=later).abandoned == 2  # support's, and the acknowledgment
    assert sender.deliver(at=later + dt.timedelta(days=1)).retried == 0  # never tried again
    agent(web)
    web.client.cookies.clear()
    log_in(web, "sam@cpro.fr")
    queue = page(web, "/support")
    assert "E-mails non envoyés (2)" in queue.text
    assert "Facture introuvable à support@cpro-education.fr" in queue.text
    assert "abandonné le" in queue.text and "injoignable" in queue.text
    assert "0 e-mail(s) en attente, 2 abandonné(s)" in cli("mail", "queue").out


class Refusing(Inbox):
    """Refuses one recipient for good (550), takes the others."""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: Any) -> str:  # fmt: skip
        if address.startswith("inconnu@"):
            return "550 5.1.1 Boite inconnue"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_a_recipient_refused_for_good_is_abandoned_at_once_and_the_others_go(
    make_web: Callable[..., Web], database_url: str
) -> None:
    server = Smtp(Refusing())
    server.start()
    try:
        web = make_web({}, database_url=database_url, smtp_url=server.url)
        with web.services.engine.begin() as connection:
            for to in ("inconnu@example.fr", "marie@example.fr"):
                enqueue(connection, Mail(to=to, subject=to, paragraphs=("P",), sender="a@b.fr"))
        done = web.services.mail_sender.deliver()
        assert (done.sent, done.abandoned) == (1, 1)
        assert [m["To"] for m in server.inbox.messages] == ["marie@example.fr"]
        [refused] = [q for q in waiting(web.services.engine) if q.abandoned_at]
        assert refused.recipient == "inconnu@example.fr" and "550" in (refused.last_error or "")
    finally:
        server.stop()


def test_threading_headers_are_carried_and_kb_headers_cannot_be_replaced(
    web: Web, smtp: Smtp
) -> None:
    smtp.start()
    engine = web.services.engine
    thread = "<T-2026-000001.abc@cpro-education.fr>"
    reply = Mail(
        to="marie@example.fr", subject="Re: ticket", paragraphs=("P",), sender="a@cpro.fr",
        message_id="<reply-1@cpro.fr>", headers=(("In-Reply-To", thread), ("References", thread)),
    )  # fmt: skip
    with engine.begin() as connection:
        assert enqueue(connection, reply) == "<reply-1@cpro.fr>"
        made = enqueue(connection, Mail(to="x@y.fr", subject="S", paragraphs=(), sender="a@b.fr"))
    assert made.endswith("@b.fr>")
    for bad in (("Bcc", "espion@example.fr"), ("X-Note", "a\r\nBcc: espion@example.fr")):
        with pytest.raises(ValueError), engine.begin() as connection:
            enqueue(connection, Mail(to="x@y.fr", subject="S", paragraphs=(), sender="a@b.fr",
                                     headers=(bad,)))  # fmt: skip
    web.services.mail_sender.deliver()
    first = smtp.inbox.messages[0]
    assert first["Message-ID"] == "<reply-1@cpro.fr>"
    assert first["In-Reply-To"] == thread and first["References"] == thread
    assert smtp.ids()[1] == made and len(smtp.ids()) == 2


def test_a_dead_senders_claim_expires_and_a_live_one_is_respected(web: Web, smtp: Smtp) -> None:
    smtp.start()
    engine = web.services.engine
    with engine.begin() as connection:
        enqueue(connection, Mail(to="x@y.fr", subject="S", paragraphs=(), sender="a@b.fr"))
        connection.execute(sa.update(tables.mail_outbox).values(
            claimed_by="dead:1", claimed_until=now() + dt.timedelta(minutes=5)))  # fmt: skip
    sender: Sender = web.services.mail_sender
    assert sender.deliver().sent == 0  # another process holds it: it may be sending it now
    assert sender.deliver(at=now() + dt.timedelta(minutes=6)).sent == 1  # its lease ran out
    assert len(smtp.ids()) == 1


def test_without_smtp_the_sender_writes_eml_files(make_web: Callable[..., Web]) -> None:
    web = make_web({})
    activated_account(web)
    log_in(web)
    new_ticket(web, "Sans SMTP")
    assert not (web.settings.data_dir / "outbox").exists()  # not in the request
    subjects = sorted(str(m["Subject"]) for m in outbox(web))  # once the sender ran
    assert len(subjects) == 2 and subjects[0].endswith("Demande enregistrée : Sans SMTP")
    assert subjects[1].endswith("] Sans SMTP")  # support's


def test_two_replicas_deliver_every_mail_exactly_once_across_an_smtp_restart(
    database_url: str, smtp: Smtp, tmp_path: Path
) -> None:
    """Two senders with their own engines drain one outbox at once, SMTP down then up."""
    settings = Settings.from_env({}, data_dir=tmp_path / "var", database_url=database_url,
                                 smtp_url=smtp.url, mail_retry_seconds=1)  # fmt: skip
    engines = [db.make_engine(settings) for _ in range(2)]
    db.upgrade(engines[0])
    senders = [Sender(e, Mailer(settings), settings, f"replica-{n}") for n, e in enumerate(engines)]
    total = 60
    for n in range(total):
        with engines[n % 2].begin() as connection:
            enqueue(connection, Mail(to=f"u{n}@example.fr", subject=f"Mail {n}", paragraphs=(),
                                     sender="a@cpro.fr"))  # fmt: skip
    for sender in senders:
        assert sender.deliver().sent == 0  # SMTP is down
    smtp.start()
    stop = threading.Event()

    def run(sender: Sender) -> None:
        while not stop.is_set():
            sender.deliver()
            time.sleep(0.01)

    threads = [threading.Thread(target=run, args=(s,)) for s in senders for _ in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(smtp.ids()) < total and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # anything sent twice would arrive by now
    stop.set()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.dispose()
    assert sorted(m["Subject"] for m in smtp.inbox.messages) == sorted(
        f"Mail {n}" for n in range(total)
    )
    assert len(set(smtp.ids())) == total


def test_a_serving_process_sends_by_itself_when_smtp_comes_back(
    make_site: Callable[..., Any], database_url: str, smtp: Smtp, tmp_path: Path
) -> None:
    """The background sender of a real serving process (lifespan running), SMTP restarted."""
    site = make_site({})
    settings = Settings.from_env({}, content_dir=site.content, index_dir=site.index,
                                 data_dir=tmp_path / "var", database_url=database_url,
                                 smtp_url=smtp.url, mail_retry_seconds=1)  # fmt: skip
    app = create_app(settings, background=True)
    with TestClient(app, follow_redirects=False) as client:
        engine = app.state.services.engine
        with engine.begin() as connection:  # SMTP is down: the first attempts fail
            enqueue(connection, Mail(to="a@b.fr", subject="Avant", paragraphs=(), sender="a@b.fr"))
        deadline = time.monotonic() + 20
        while not waiting(engine)[0].attempts and time.monotonic() < deadline:
            time.sleep(0.1)
        assert waiting(engine)[0].attempts >= 1
        smtp.start()
        while not smtp.ids() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.get("/").status_code == 200
    [mail] = smtp.inbox.messages
    assert mail["Subject"] == "Avant"
    assert waiting(engine) == []


def test_metrics_show_the_queue_its_failures_and_what_was_abandoned(web: Web) -> None:
    from test_observability import local, scrape, value

    new_ticket(web, "Compteur")
    text = scrape(local(web))
    assert (value(text, "kb_mail_queue"), value(text, "kb_mail_failing")) == (2, 0)
    sender: Sender = web.services.mail_sender
    sender.deliver()  # SMTP down
    text = scrape(local(web))
    assert (value(text, "kb_mail_queue"), value(text, "kb_mail_failing")) == (2, 2)
    assert value(text, "kb_mail_oldest_waiting_seconds") >= 0
    sender.deliver(at=now() + dt.timedelta(hours=49))
    text = scrape(local(web))
    assert (value(text, "kb_mail_queue"), value(text, "kb_mail_abandoned")) == (0, 2)
