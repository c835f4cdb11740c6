"""Outgoing mail through a real SMTP server (aiosmtpd, in-process), and the outbox fallback."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from conftest import Inbox

from kb.config import Settings
from kb.helpdesk.mail import Mail, Mailer, MailError
from kb.testing import free_port

MAIL = Mail(
    to="Marie Curie <marie@example.fr>",
    subject="Activez votre compte CPRO éducation",
    paragraphs=("Bonjour Marie Curie,", "Suivez ce lien :"),
    link=("Choisir mon mot de passe", "http://kb.example/activation/abc"),
    after_link=("L'équipe d'assistance",),
)


@pytest.fixture
def tls_smtp(tmp_path: Path) -> Iterator[tuple[Inbox, int]]:
    """STARTTLS with a self-signed certificate, and AUTH only after it."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"kb",
            b"s3cret p@ss",
        )
        return AuthResult(success=ok)

    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    yield inbox, port
    controller.stop()


def test_smtp_delivers_french_text_and_html(smtp: tuple[Inbox, int], tmp_path: Path) -> None:
    inbox, port = smtp
    settings = Settings.from_env({}, data_dir=tmp_path, smtp_url=f"smtp://127.0.0.1:{port}")
    Mailer(settings).send(MAIL)
    [message] = inbox.messages
    assert message["Subject"] == "Activez votre compte CPRO éducation"
    assert message["To"] == "Marie Curie <marie@example.fr>"
    assert message["From"] == "CPRO éducation - Assistance <assistance@cpro-education.fr>"
    assert message["Date"] and message["Message-ID"].endswith("@cpro-education.fr>")
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "Suivez ce lien :\n\nhttp://kb.example/activation/abc\n\nL'équipe" in text
    html = message.get_body(("html",)).get_content()
    assert '<html lang="fr">' in html
    assert '<a href="http://kb.example/activation/abc">Choisir mon mot de passe</a>' in html
    assert not (tmp_path / "outbox").exists()


def test_smtp_with_starttls_and_authentication(tls_smtp: tuple[Inbox, int], tmp_path: Path) -> None:
    inbox, port = tls_smtp
    url = f"smtp+starttls://kb:s3cret%20p%40ss@127.0.0.1:{port}?verify=0"
    Mailer(Settings.from_env({}, data_dir=tmp_path, smtp_url=url)).send(MAIL)
    assert [m["Subject"] for m in inbox.messages] == ["Activez votre compte CPRO éducation"]


def test_smtp_unreachable_gives_a_french_error(tmp_path: Path) -> None:
    url = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(MailError, match=r"Serveur SMTP 127\.0\.0\.1:\d+ injoignable"):
        Mailer(Settings.from_env({}, data_dir=tmp_path, smtp_url=url)).send(MAIL)


def test_without_smtp_messages_go_to_the_outbox(tmp_path: Path) -> None:
    Mailer(Settings.from_env({}, data_dir=tmp_path)).send(MAIL)
    [path] = (tmp_path / "outbox").glob("*.eml")
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["Subject"] == "Activez votre compte CPRO éducation"


def test_account_activation_through_smtp(
    smtp: tuple[Inbox, int], make_web: Any, tmp_path: Path
) -> None:
    from conftest import link_in, make_account

    from kb.helpdesk import notifications

    inbox, port = smtp
    web = make_web({}, smtp_url=f"smtp://127.0.0.1:{port}", base_url="https://aide.example.fr")
    account = make_account(web)
    with web.services.engine.begin() as connection:
        notifications.queue_activation(connection, web.settings, account)
    assert inbox.messages == []  # queued: the sender delivers it, never the caller
    web.services.mail_sender.deliver()
    [message] = inbox.messages
    assert link_in(message).startswith("/activation/")
    assert "https://aide.example.fr/activation/" in message.get_body(("plain",)).get_content()
    assert web.client.get(link_in(message)).status_code == 200
