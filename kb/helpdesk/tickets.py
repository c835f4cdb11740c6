"""Help tickets: what a ticket, its messages and attachments are, and how they are read."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kb.errors import BadRequest, NotFound
from kb.helpdesk.accounts import Account
from kb.tables import accounts, attachments, messages, tickets

# The same status reads from each side: the establishment waits for support, or support
# waits for the establishment.
STATUSES = {
    "nouveau": "Nouveau",
    "en_cours": "En cours de traitement",
    "en_attente": "En attente de votre réponse",
    "resolu": "Résolu",
    "ferme": "Fermé",
}
STAFF_STATUSES = {
    "nouveau": "Nouveau",
    "en_cours": "À traiter",
    "en_attente": "En attente de l'établissement",
    "resolu": "Résolu",
    "ferme": "Fermé",
}
# Where a request came from: the form, or a call or an e-mail that an agent typed in.
CHANNELS = {"web": "Formulaire", "telephone": "Téléphone", "email": "E-mail"}
SUBJECT_MAX = 200
MESSAGE_MAX = 50_000
PER_PAGE = 20
CATEGORY_REQUIRED = (
    "Merci de bien renseigner la catégorie de la demande : elle permet de l'adresser "
    "directement à l'équipe qui connaît le sujet."
)


class TicketInvalid(BadRequest):
    """What the form says is wrong, field by field."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(" ".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class Attachment:
    id: int
    filename: str
    size: int
    sha256: str
    stored_as: str
    added_at: dt.datetime  # when its message was written: the file never changes after


@dataclass(frozen=True)
class Message:
    id: int
    author: str
    from_support: bool
    internal: bool
    body: str
    created_at: dt.datetime
    attachments: list[Attachment] = field(default_factory=list)
    author_id: int = 0


@dataclass(frozen=True)
class Ticket:
    id: int
    reference: str
    account_id: int
    establishment: str
    category: str
    subject: str
    status: str
    created_at: dt.datetime
    due_at: dt.datetime
    updated_at: dt.datetime
    messages: list[Message] = field(default_factory=list)
    assignee_id: int | None = None
    assignee: str | None = None
    channel: str = "web"

    @property
    def status_label(self) -> str:
        return STATUSES[self.status]

    @property
    def staff_status_label(self) -> str:
        return STAFF_STATUSES[self.status]

    @property
    def last_message_id(self) -> int:
        return max((m.id for m in self.messages), default=0)

    @property
    def open(self) -> bool:
        return self.status not in ("resolu", "ferme")

    @property
    def closed(self) -> bool:
        """Closed for good (resolved long ago): a new question is a new ticket."""
        return self.status == "ferme"


@dataclass(frozen=True)
class Page:
    tickets: list[Ticket]
    total: int
    page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / PER_PAGE))


def ticket_from_row(row: Any) -> Ticket:
    return Ticket(
        id=row.id,
        reference=row.reference,
        account_id=row.account_id,
        establishment=row.establishment,
        category=row.category,
        subject=row.subject,
        status=row.status,
        created_at=row.created_at,
        due_at=row.due_at,
        updated_at=row.updated_at,
        assignee_id=row.assignee_id,
        channel=row.channel,
        assignee=f"{row.assignee_first} {row.assignee_last}".strip() if row.assignee_id else None,
    )


_assignees = accounts.alias("assignees")


def select_tickets() -> sa.Select[Any]:
    return (
        sa.select(
            tickets,
            accounts.c.establishment,
            _assignees.c.first_name.label("assignee_first"),
            _assignees.c.last_name.label("assignee_last"),
        )
        .join(accounts, accounts.c.id == tickets.c.account_id)
        .outerjoin(_assignees, _assignees.c.id == tickets.c.assignee_id)
    )


def list_for(engine: Engine, account: Account, page: int = 1) -> Page:
    """An establishment's tickets, newest first."""
    with engine.connect() as connection:
        total = connection.execute(
            sa.select(sa.func.count()).where(tickets.c.account_id == account.id)
        ).scalar_one()
        rows = connection.execute(
            select_tickets()
            .where(tickets.c.account_id == account.id)
            .order_by(tickets.c.created_at.desc(), tickets.c.id.desc())
            .limit(PER_PAGE)
            .offset((page - 1) * PER_PAGE)
        )
        return Page([ticket_from_row(r) for r in rows], int(total), page)


def get_for(engine: Engine, account: Account, reference: str, internal: bool = False) -> Ticket:
    """The ticket with its thread, if this account may see it; otherwise: not found."""
    with engine.connect() as connection:
        row = connection.execute(select_tickets().where(tickets.c.reference == reference)).first()
        if row is None or not (account.is_agent or row.account_id == account.id):
            raise NotFound("Ce ticket n'existe pas, ou il appartient à un autre établissement.")
        query = (
            sa.select(messages, accounts.c.first_name, accounts.c.last_name)
            .join(accounts, accounts.c.id == messages.c.author_id)
            .where(messages.c.ticket_id == row.id, messages.c.held_at.is_(None))
            .order_by(messages.c.created_at, messages.c.id)
        )
        if not internal:
            query = query.where(messages.c.internal.is_(False))
        thread = connection.execute(query).all()
        files = connection.execute(
            sa.select(attachments)
            .where(attachments.c.message_id.in_([m.id for m in thread] or [-1]))
            .order_by(attachments.c.id)
        ).all()
    by_message: dict[int, list[Attachment]] = {}
    written = {m.id: m.created_at for m in thread}
    for f in files:
        by_message.setdefault(f.message_id, []).append(
            Attachment(f.id, f.filename, f.size, f.sha256, f.stored_as, written[f.message_id])
        )
    ticket = ticket_from_row(row)
    thread_messages = [
        Message(
            id=m.id,
            author=f"{m.first_name} {m.last_name}",
            from_support=m.from_support,
            internal=m.internal,
            body=m.body,
            created_at=m.created_at,
            attachments=by_message.get(m.id, []),
            author_id=m.author_id,
        )
        for m in thread
    ]
    return Ticket(**{**ticket.__dict__, "messages": thread_messages})


def owner_of(engine: Engine, reference: str) -> int | None:
    """The account that owns this ticket, if there is such a ticket."""
    with engine.connect() as connection:
        owner: int | None = connection.execute(
            sa.select(tickets.c.account_id).where(tickets.c.reference == reference)
        ).scalar()
    return owner


def attachment_for(
    engine: Engine, account: Account, reference: str, attachment_id: int
) -> Attachment:
    ticket = get_for(engine, account, reference, internal=account.is_agent)
    for message in ticket.messages:
        for attachment in message.attachments:
            if attachment.id == attachment_id:
                return attachment
    raise NotFound("Cette pièce jointe n'existe pas.")
