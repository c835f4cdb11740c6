"""The LMTP receiver behind the MTA (aiosmtpd): each answer to a ticket mail is placed in its
thread, or refused with a 5xx the MTA turns into a bounce with kb's reason."""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.engine import Engine

from kb.config import Settings
from kb.errors import KbError
from kb.helpdesk import inbound
from kb.helpdesk.attachments import Store
from kb.helpdesk.business_hours import AnswerDelay
from kb.helpdesk.notifications import Links

log = logging.getLogger("kb.helpdesk.lmtp")
# aiosmtpd holds a message in memory: larger mail is refused (552) before it is read, and the
# sender is told to put big files on the ticket's page (the web takes up to KB_MAX_UPLOAD_BYTES).
MAX_MAIL_BYTES = 50 * 1024 * 1024


def _ascii(text: str) -> str:
    """SMTP replies travel in ASCII: 'À défaut' -> 'A defaut'."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


class Handler:
    """aiosmtpd's handler: the recipient checked at RCPT, the mail placed at DATA."""

    def __init__(
        self, settings: Settings, engine: Engine, store: Store, secret: bytes, links: Links
    ) -> None:
        self.settings = settings
        self.links = links
        self.engine = engine
        self.store = store
        self.secret = secret
        self.delay = AnswerDelay(settings.answer_hours, settings.holiday_calendar)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        try:
            inbound.ticket_of(self.secret, address)
        except inbound.Refused as exc:
            return f"550 5.1.1 {_ascii(exc.message)}"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        sender = envelope.mail_from or ""
        replies = []
        for recipient in envelope.rcpt_tos:  # one ticket each; LMTP answers once per message
            replies.append(await asyncio.get_running_loop().run_in_executor(
                None, self._place, raw, sender, recipient
            ))  # fmt: skip
        failed = [r for r in replies if not r.startswith("2")]
        return failed[0] if failed else replies[0] if replies else "250 2.0.0 OK"

    def _place(self, raw: bytes, sender: str, recipient: str) -> str:
        try:
            placed = inbound.place(
                self.engine, self.store, self.secret, raw, sender, recipient,
                delay=self.delay, limit=self.settings.max_upload_bytes, links=self.links,
            )  # fmt: skip
        except inbound.Refused as exc:
            log.info("mail from %s to %s refused: %s", sender, recipient, exc.message)
            return f"550 5.7.1 {_ascii(exc.message)}"
        except KbError as exc:  # the ticket is gone, say: the sender learns why
            return f"550 5.7.1 {_ascii(exc.message)}"
        except Exception:  # the database is down: the MTA keeps the mail and retries
            log.exception("mail from %s to %s: not placed, the MTA will retry", sender, recipient)
            return "451 4.3.0 Erreur temporaire, nouvel essai plus tard"
        if placed is None:
            log.info("automatic mail from %s to %s dropped", sender, recipient)
            return "250 2.0.0 Message automatique ignore"
        log.info("mail from %s added to %s", sender, placed.reference)
        return f"250 2.0.0 Message ajoute au ticket {placed.reference}"


class Receiver(Controller):
    """An LMTP server on host:port in a thread of its own (start(), stop())."""

    def __init__(
        self, settings: Settings, engine: Engine, store: Store, secret: bytes, links: Links,
        host: str = "127.0.0.1", port: int = 8025,
    ) -> None:  # fmt: skip
        """`links`: the web's pages by route name (Services.links), for the mails it queues."""
        super().__init__(Handler(settings, engine, store, secret, links), hostname=host,
                         port=port)  # fmt: skip

    def factory(self) -> LMTP:
        return LMTP(self.handler, data_size_limit=MAX_MAIL_BYTES, enable_SMTPUTF8=True,
                    hostname="kb")  # fmt: skip
