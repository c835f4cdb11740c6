"""Mail that answers a ticket: placed in its thread, or refused with a reason the MTA bounces.

Each ticket mail says "reply to reponse+T-2026-000123.<token>@…": the token (an HMAC of the
reference) proves the address came from kb, and the sender must be the establishment that owns
the ticket (or an agent). Quoted history and signatures are cut; attachments keep the web's
limits; auto-replies and mail loops are dropped without a bounce."""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage, Message
from email.utils import parseaddr
from html.parser import HTMLParser

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kb.errors import KbError
from kb.helpdesk import accounts, notifications, replies, tickets
from kb.helpdesk.attachments import MAX_FILES, ReceivedFile, ReceivedForm, Store, safe_filename
from kb.helpdesk.business_hours import AnswerDelay
from kb.tables import accounts as accounts_table

ADDRESS = re.compile(
    r"^(?P<local>[^+@]+)\+(?P<ref>T-\d{4}-\d{6})\.(?P<token>[0-9a-f]{12})@(?P<domain>.+)$", re.I
)
AUTO_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
AUTO_SUBJECT = re.compile(
    r"^\s*(réponse automatique|absence|auto(matic)?[ -]?reply|out of (the )?office|"
    r"automatische antwort|autoreply|undeliverable|delivery status notification|"
    r"non remis|mail delivery failed)",
    re.I,
)
# Where the quoted history starts, in the clients French schools use.
QUOTE_START = re.compile(
    r"^\s*(le .{3,120}a écrit\s*:|on .{3,120}wrote\s*:|-{2,}\s*(message d'origine|original message)"
    r"\s*-{2,}|de\s*:\s*.+|from\s*:\s*.+|_{10,})\s*$",
    re.I,
)
SIGNATURE_START = re.compile(
    r"^(-- ?|envoyé de mon (iphone|ipad|smartphone|téléphone).*|sent from my .*|"
    r"obtenir outlook pour .*)$",
    re.I,
)


class Refused(KbError):
    """The mail cannot be placed: the MTA bounces it to its sender with this reason."""

    status = 550
    code = "courriel_refuse"


@dataclass(frozen=True)
class Placed:
    reference: str
    message_id: int
    author: str
    attachments: int


def reply_token(secret: bytes, reference: str) -> str:
    return hmac.new(secret, f"reponse:{reference}".encode(), hashlib.sha256).hexdigest()[:12]


def reply_address(secret: bytes, base: str, reference: str) -> str:
    """'reponse@cpro.fr' -> 'reponse+T-2026-000123.1a2b3c4d5e6f@cpro.fr' for this ticket."""
    local, _, domain = base.rpartition("@")
    return f"{local}+{reference}.{reply_token(secret, reference)}@{domain}"


def ticket_of(secret: bytes, recipient: str) -> str:
    """The ticket a recipient address names, if kb made that address; else Refused."""
    match = ADDRESS.match(recipient.strip().strip("<>"))
    if not match:
        raise Refused(
            "Adresse inconnue : répondez avec le bouton « Répondre » d'un e-mail de ticket."
        )
    reference = match["ref"].upper()
    if not hmac.compare_digest(
        reply_token(secret, reference).encode(), match["token"].lower().encode("utf-8", "replace")
    ):
        raise Refused("Adresse de réponse invalide pour ce ticket.")
    return reference


def is_automatic(message: Message, envelope_sender: str) -> bool:
    """Auto-replies, bounces, lists and mail kb sent itself: never answered, never bounced."""
    if not envelope_sender or envelope_sender == "<>":
        return True  # a bounce (null sender) must never be answered
    auto = str(message.get("Auto-Submitted", "no")).strip().lower()
    if auto and auto != "no":
        return True
    if str(message.get("Precedence", "")).strip().lower() in AUTO_PRECEDENCE:
        return True
    # Not X-Auto-Response-Suppress: Outlook also puts it on mail a person wrote.
    if any(message.get(h) for h in ("X-Autoreply", "X-Autorespond", "List-Id", "X-Loop")):
        return True
    return bool(AUTO_SUBJECT.match(str(message.get("Subject", ""))))


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("script", "style", "blockquote"):
            self._skip += 1
        if tag in ("br", "p", "div", "li", "tr"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "blockquote") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def body_text(message: EmailMessage) -> str:
    """The new words of the mail: plain text (or HTML made text), history and signature cut."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        text = part.get_content()
    except (LookupError, UnicodeDecodeError):
        payload = part.get_payload(decode=True)
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if part.get_content_subtype() == "html":
        parser = _Text()
        parser.feed(text)
        text = "".join(parser.parts)
    return strip_history(text)


def strip_history(text: str) -> str:
    kept: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if QUOTE_START.match(line) or SIGNATURE_START.match(line.rstrip()):
            break
        kept.append(line)
    while kept and (not kept[-1].strip() or kept[-1].lstrip().startswith(">")):
        kept.pop()
    lines = [line for line in kept if not line.lstrip().startswith(">")]
    return "\n".join(lines).strip()


def _attachments(message: EmailMessage, store: Store, limit: int) -> list[ReceivedFile]:
    """Files of the mail written to the temp dir; over the web's limits: Refused."""
    found: list[ReceivedFile] = []
    total = 0
    store.temp_dir.mkdir(parents=True, exist_ok=True)
    try:
        for part in message.iter_attachments():
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            if len(found) >= MAX_FILES:
                raise Refused(f"{MAX_FILES} pièces jointes au plus par message.")
            total += len(payload)
            if total > limit:
                raise Refused(
                    "Pièces jointes trop volumineuses : déposez-les sur la page du ticket."
                )
            path = store.temp_dir / f"mail-{uuid.uuid4().hex}"
            path.write_bytes(payload)
            found.append(ReceivedFile(
                field="fichiers", filename=safe_filename(part.get_filename() or "piece-jointe"),
                content_type=part.get_content_type(), temp_path=path, size=len(payload),
                sha256=hashlib.sha256(payload).hexdigest(),
            ))  # fmt: skip
    except BaseException:
        for received in found:
            received.temp_path.unlink(missing_ok=True)
        raise
    return found


def place(
    engine: Engine, store: Store, secret: bytes, raw: bytes, envelope_sender: str,
    recipient: str, *, delay: AnswerDelay, limit: int, links: notifications.Links,
) -> Placed | None:  # fmt: skip
    """Add the mail to its ticket's thread; None when it is automatic (dropped, no bounce).
    The other side is told as if it had been written on the web: support of the
    establishment's answer, the establishment of an agent's."""
    message = message_from_bytes(raw, policy=email_policy.default)
    assert isinstance(message, EmailMessage)
    if is_automatic(message, envelope_sender):
        return None
    reference = ticket_of(secret, recipient)
    sender = parseaddr(str(message.get("From", "")))[1] or envelope_sender
    author = _author(engine, sender, reference)
    ticket = tickets.get_for(engine, author, reference, internal=author.is_agent)
    body = body_text(message)
    files = _attachments(message, store, limit)
    form = ReceivedForm(fields={"message": body}, files=files)
    try:
        sent = replies.reply(engine, store, ticket, author, form, delay=delay, limit=limit,
                             notify=_tell(links, secret, ticket, author))  # fmt: skip
    except KbError as exc:  # a closed ticket, an empty mail: said to the sender
        raise Refused(exc.message) from exc
    return Placed(reference, sent.message_id, author.name, len(files))


def _tell(
    links: notifications.Links, secret: bytes, ticket: tickets.Ticket, author: accounts.Account
) -> Callable[[sa.Connection, int], None]:
    settings = links.settings

    def notify(connection: sa.Connection, message_id: int) -> None:
        if not author.is_staff:
            notifications.queue_establishment_news(
                connection, settings, links, secret, ticket.id, author, message_id
            )
            return
        owner = accounts.read(connection, ticket.account_id)
        if owner is not None:
            notifications.queue_support_reply(
                connection, settings, owner, ticket.reference, ticket.subject,
                message_id=message_id, secret=secret, links=links,
            )  # fmt: skip

    return notify


def _author(engine: Engine, sender: str, reference: str) -> accounts.Account:
    """The account the mail comes from: the ticket's establishment, or an agent."""
    try:
        email = accounts.normalize_email(sender)
    except KbError:
        raise Refused("Expéditeur illisible.") from None
    owner_id = tickets.owner_of(engine, reference)
    if owner_id is None:
        raise Refused(f"Le ticket {reference} n'existe pas.")
    owner = accounts.get(engine, owner_id)
    if owner is not None and owner.email == email and not owner.disabled:
        return owner
    with engine.connect() as connection:
        agent_id = connection.execute(
            sa.select(accounts_table.c.id).where(
                accounts_table.c.email == email,
                accounts_table.c.role.in_(accounts.AGENT_ROLES),
                accounts_table.c.disabled_at.is_(None),
            )
        ).scalar()
    agent = accounts.get(engine, agent_id) if agent_id else None
    if agent is not None:
        return agent
    raise Refused(
        f"L'adresse {email} n'est pas celle du compte qui a ouvert le ticket {reference} : "
        "répondez depuis l'adresse du compte, ou sur la page du ticket."
    )
