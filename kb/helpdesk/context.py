"""What an agent needs beside a ticket: the establishment, its other tickets, what it read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kb.helpdesk.tickets import Ticket
from kb.tables import accounts, article_reads, tickets

OTHER_TICKETS = 10
READ_BEFORE = dt.timedelta(hours=1)
OPEN = ("nouveau", "en_cours", "en_attente")


@dataclass(frozen=True)
class OtherTicket:
    reference: str
    subject: str
    status: str
    created_at: dt.datetime

    @property
    def open(self) -> bool:
        return self.status in OPEN


@dataclass(frozen=True)
class Context:
    establishment: str
    uai: str | None
    contact: str
    first_name: str
    email: str
    disabled: bool
    other_tickets: list[OtherTicket] = field(default_factory=list)
    more_tickets: int = 0  # beyond those listed
    read_before: list[dict[str, Any]] = field(default_factory=list)  # articles, oldest first


def context_of(engine: Engine, ticket: Ticket, listing: Mapping[str, dict[str, Any]]) -> Context:
    """The establishment and contact, its other tickets (open first, then the newest), and the
    published articles it read in the hour before it wrote this ticket."""
    is_open = sa.case((tickets.c.status.in_(OPEN), 0), else_=1)
    with engine.connect() as connection:
        owner = connection.execute(
            sa.select(accounts).where(accounts.c.id == ticket.account_id)
        ).one()
        others = connection.execute(
            sa.select(
                tickets.c.reference, tickets.c.subject, tickets.c.status, tickets.c.created_at
            )
            .where(tickets.c.account_id == ticket.account_id, tickets.c.id != ticket.id)
            .order_by(is_open, tickets.c.created_at.desc(), tickets.c.id.desc())
            .limit(OTHER_TICKETS + 1)
        ).all()
        total = connection.execute(
            sa.select(sa.func.count()).where(
                tickets.c.account_id == ticket.account_id, tickets.c.id != ticket.id
            )
        ).scalar_one()
        reads = connection.execute(
            sa.select(article_reads.c.slug, sa.func.min(article_reads.c.at).label("first"))
            .where(
                article_reads.c.account_id == ticket.account_id,
                article_reads.c.at >= ticket.created_at - READ_BEFORE,
                article_reads.c.at <= ticket.created_at,
            )
            .group_by(article_reads.c.slug)
            .order_by("first")
        ).all()
    listed = [
        OtherTicket(r.reference, r.subject, r.status, r.created_at) for r in others[:OTHER_TICKETS]
    ]
    return Context(
        establishment=owner.establishment,
        uai=owner.login if owner.role == "etablissement" else None,
        contact=f"{owner.first_name} {owner.last_name}".strip(),
        first_name=owner.first_name,
        email=owner.email,
        disabled=owner.disabled_at is not None,
        other_tickets=listed,
        more_tickets=int(total) - len(listed),
        read_before=[listing[r.slug] for r in reads if r.slug in listing],
    )
