"""Outgoing mail: SMTP when KB_SMTP_URL is set, otherwise .eml files in the data dir's outbox."""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from html import escape
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from kb.config import Settings
from kb.errors import KbError

log = logging.getLogger("kb.helpdesk.mail")


class MailError(KbError):
    status = 503
    code = "envoi_impossible"


@dataclass(frozen=True)
class Mail:
    """A French message: plain text, and the same paragraphs as HTML."""

    to: str
    subject: str
    paragraphs: tuple[str, ...]
    link: tuple[str, str] | None = None  # (label, url): the one thing to click
    after_link: tuple[str, ...] = ()

    def text(self) -> str:
        parts = [*self.paragraphs, *([self.link[1]] if self.link else []), *self.after_link]
        return "\n\n".join(parts) + "\n"

    def html(self) -> str:
        body = [f"<p>{escape(p)}</p>" for p in self.paragraphs]
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

    def message(self, mail: Mail) -> EmailMessage:
        sender = self.settings.mail_from
        message = EmailMessage()
        message["From"] = sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Date"] = formatdate(localtime=True)
        domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
        message["Message-ID"] = make_msgid(domain=domain)
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(mail.text(), charset="utf-8")
        message.add_alternative(mail.html(), subtype="html", charset="utf-8")
        message["Content-Language"] = "fr"  # after: add_alternative moves Content-* headers
        return message

    def send(self, mail: Mail) -> EmailMessage:
        message = self.message(mail)
        if self.settings.smtp_url:
            self._smtp(message)
            log.info("mail: sent %r to %s", mail.subject, mail.to)
        else:
            path = self._write(message)
            log.info("mail: %r to %s written to %s", mail.subject, mail.to, path)
        return message

    def _write(self, message: EmailMessage) -> Path:
        self.outbox.mkdir(parents=True, exist_ok=True)
        # Sortable in the order written, even within the same second.
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns()}-{uuid.uuid4().hex[:6]}.eml"
        tmp = self.outbox / f".{name}.tmp"
        tmp.write_bytes(bytes(message))
        os.replace(tmp, self.outbox / name)
        return self.outbox / name

    def _smtp(self, message: EmailMessage) -> None:
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
        try:
            smtp: smtplib.SMTP
            if implicit_tls:
                smtp = smtplib.SMTP_SSL(host, port, timeout=30, context=context)
            else:
                smtp = smtplib.SMTP(host, port, timeout=30)
            with smtp:
                if starttls:
                    smtp.starttls(context=context)
                if url.username:
                    smtp.login(unquote(url.username), unquote(url.password or ""))
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            log.error("mail: SMTP %s:%s refused %r: %s", host, port, message["Subject"], exc)
            raise MailError(
                "L'e-mail n'a pas pu être envoyé pour le moment. Réessayez dans quelques minutes."
            ) from exc


def address(name: str, email: str) -> str:
    """'Marie Curie <marie@example.fr>': a name can never change who gets the message."""
    safe = re.sub(r'[\x00-\x1f\x7f"<>,;:@\\()\[\]]', " ", name)
    return formataddr((" ".join(safe.split()), email))
