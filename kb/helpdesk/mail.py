"""Outgoing mail, the transport: SMTP when KB_SMTP_URL is set, otherwise .eml files in the
data dir's outbox. What to send is queued in the database first (kb.helpdesk.outbox)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import smtplib
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr
from html import escape
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from kb.config import Settings
from kb.errors import KbError

log = logging.getLogger("kb.helpdesk.mail")


SMTP_TIMEOUT = 30  # seconds per network operation: only the background sender waits on it


class MailError(KbError):
    status = 503
    code = "envoi_impossible"

    def __init__(self, message: str, *, permanent: bool = False, connection: bool = False):
        super().__init__(message)
        self.permanent = permanent  # the server refused this message for good (5xx)
        self.connection = connection  # the server could not be reached: no mail can go now


@dataclass(frozen=True)
class Mail:
    """A French message: plain text, and the same paragraphs as HTML.

    `sender` is the From address (KB_MAIL_FROM when empty); `message_id` is made when the mail
    is queued unless given; `headers` carries extra ones such as In-Reply-To and References.
    `choices` are answers given with one click ("Satisfait", "Pas satisfait"), before the link."""

    to: str
    subject: str
    paragraphs: tuple[str, ...]
    link: tuple[str, str] | None = None  # (label, url): the one thing to click
    after_link: tuple[str, ...] = ()
    sender: str = ""
    message_id: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    choices: tuple[tuple[str, str], ...] = ()  # (label, url) each

    def text(self) -> str:
        chosen = [f"{label} : {url}" for label, url in self.choices]
        parts = [*self.paragraphs, *chosen, *([self.link[1]] if self.link else []),
                 *self.after_link]  # fmt: skip
        return "\n\n".join(parts) + "\n"

    def html(self) -> str:
        body = [f"<p>{escape(p)}</p>" for p in self.paragraphs]
        if self.choices:
            choices = " · ".join(
                f'<a href="{escape(url)}">{escape(label)}</a>' for label, url in self.choices
            )
            body.append(f"<p>{choices}</p>")
        if self.link:
            label, url = self.link
            body.append(f'<p><a href="{escape(url)}">{escape(label)}</a></p>')
        body += [f"<p>{escape(p)}</p>" for p in self.after_link]
        return (
            '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
            f"<title>{escape(self.subject)}</title></head><body>{''.join(body)}</body></html>"
        )


class Mailer:
    """Sends through SMTP, or writes to the outbox so that a machine without SMTP works."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.outbox = settings.data_dir / "outbox"

    def message(self, mail: Mail, date: float | None = None) -> EmailMessage:
        sender = mail.sender or self.settings.mail_from
        return compose(
            sender=sender,
            to=mail.to,
            subject=mail.subject,
            text=mail.text(),
            html=mail.html(),
            message_id=mail.message_id or new_message_id(sender),
            headers=mail.headers,
            date=date,
        )

    def send(self, mail: Mail) -> EmailMessage:
        """Send one mail now, in the caller's time (the outbox's sender is the usual way)."""
        message = self.message(mail)
        with self.session() as deliver:
            deliver(message)
        return message

    @contextmanager
    def session(self) -> Iterator[Callable[[EmailMessage], None]]:
        """A way to deliver several messages over one SMTP connection, opened at the first."""
        if not self.settings.smtp_url:

            def write(message: EmailMessage) -> None:
                path = self._write(message)
                log.info("mail: %r to %s written to %s", message["Subject"], message["To"], path)

            yield write
            return
        opened: list[smtplib.SMTP] = []

        def send(message: EmailMessage) -> None:
            if not opened:
                opened.append(self._connect())
            self._send(opened[0], message)
            log.info("mail: sent %r to %s", message["Subject"], message["To"])

        try:
            yield send
        finally:
            for smtp in opened:
                with contextlib.suppress(OSError, smtplib.SMTPException):
                    smtp.quit()

    def _write(self, message: EmailMessage) -> Path:
        self.outbox.mkdir(parents=True, exist_ok=True)
        # Sortable in the order written, even within the same second.
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns()}-{uuid.uuid4().hex[:6]}.eml"
        tmp = self.outbox / f".{name}.tmp"
        tmp.write_bytes(bytes(message))
        os.replace(tmp, self.outbox / name)
        return self.outbox / name

    def _connect(self) -> smtplib.SMTP:
        url = urlsplit(self.settings.smtp_url)
        options = {k: v[-1] for k, v in parse_qs(url.query).items()}
        implicit_tls = url.scheme == "smtps"
        starttls = url.scheme == "smtp+starttls" or options.get("starttls") in ("1", "true")
        host = url.hostname or "localhost"
        port = url.port or (465 if implicit_tls else 587 if starttls else 25)
        context = ssl.create_default_context()
        if options.get("verify") in ("0", "false"):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        smtp: smtplib.SMTP | None = None
        try:
            if implicit_tls:
                smtp = smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT, context=context)
            else:
                smtp = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT)
            if starttls:
                smtp.starttls(context=context)
            if url.username:
                smtp.login(unquote(url.username), unquote(url.password or ""))
            return smtp
        except (OSError, smtplib.SMTPException) as exc:
            if smtp is not None:
                with contextlib.suppress(OSError, smtplib.SMTPException):
                    smtp.close()
            log.warning("mail: SMTP %s:%s unreachable: %s", host, port, exc)
            raise MailError(
                f"Serveur SMTP {host}:{port} injoignable : {_reason(exc)}", connection=True
            ) from exc

    def _send(self, smtp: smtplib.SMTP, message: EmailMessage) -> None:
        try:
            smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise MailError(
                f"Destinataire refusé par le serveur SMTP : {_reason(exc)}",
                permanent=all(code >= 500 for code in codes),
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise MailError(
                f"Message refusé par le serveur SMTP : {_reason(exc)}",
                permanent=exc.smtp_code >= 500,
                connection=isinstance(exc, smtplib.SMTPServerDisconnected),
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(
                f"Connexion SMTP interrompue : {_reason(exc)}", connection=True
            ) from exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        parts = [f"{code} {_text(reply)}" for code, reply in exc.recipients.values()]
        return "; ".join(parts)[:300]
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"[:300]
    return (str(exc).strip() or type(exc).__name__)[:300]


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def new_message_id(sender: str) -> str:
    """A Message-ID in the sender's domain, unique across replicas."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    return f"<{uuid.uuid4().hex}@{domain}>"  # short enough to stay on one header line


def compose(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    headers: tuple[tuple[str, str], ...] = (),
    date: float | None = None,
) -> EmailMessage:
    """The MIME message: text and HTML alternatives, French, marked as automatic."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(date, localtime=True)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    for name, value in headers:
        message[name] = value
    message.set_content(text, charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    message["Content-Language"] = "fr"  # after: add_alternative moves Content-* headers
    return message


def address(name: str, email: str) -> str:
    """'Marie Curie <marie@example.fr>': a name can never change who gets the message."""
    safe = re.sub(r'[\x00-\x1f\x7f"<>,;:@\\()\[\]]', " ", name)
    return formataddr((" ".join(safe.split()), email))
