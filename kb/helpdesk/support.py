"""The support team's queue: tickets of every establishment, by due date; articles linked."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kb.helpdesk.accounts import now
from kb.helpdesk.tickets import STATUSES, Ticket, select_tickets, ticket_from_row
from kb.tables import accounts, article_links, messages, tickets

PER_PAGE = 50
OPEN_STATUSES = ("nouveau", "en_cours", "en_attente")
_ARTICLE_URL = re.compile(r"(?:https?://[^\s/]+)?/articles/([a-z0-9]+(?:-[a-z0-9]+)*)")


@dataclass(frozen=True)
class QueueFilter:
    status: str = "ouverts"  # a status, "ouverts" (not resolved) or "tous"
    view: str = "tous"  # "mes" (the agent's own), "non_assignes" or "tous"
    agent_id: int | None = None  # whose "mes" is, or a colleague's tickets
    category: str = ""
    account_id: int | None = None
    words: str = ""
    page: int = 1


@dataclass(frozen=True)
class Queue:
    tickets: list[Ticket]
    total: int
    page: int
    counts: dict[str, int]
    establishments: list[tuple[int, str, str]]  # (account id, establishment, UAI)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / PER_PAGE))


def queue(engine: Engine, wanted: QueueFilter) -> Queue:
    """Tickets by answer due date, the most urgent first; resolved ones last."""
    conditions: list[Any] = []
    if wanted.status == "ouverts":
        conditions.append(tickets.c.status.in_(OPEN_STATUSES))
    elif wanted.status in STATUSES:
        conditions.append(tickets.c.status == wanted.status)
    if wanted.view == "non_assignes":
        conditions.append(tickets.c.assignee_id.is_(None))
    elif wanted.view == "mes" or wanted.agent_id is not None:
        conditions.append(tickets.c.assignee_id == wanted.agent_id)
    if wanted.category:
        conditions.append(tickets.c.category == wanted.category)
    if wanted.account_id:
        conditions.append(tickets.c.account_id == wanted.account_id)
    words = wanted.words.strip()
    if words:
        if re.fullmatch(r"(?i)t-\d{4}-\d{6}", words):
            conditions.append(tickets.c.reference == words.upper())
        else:
            for word in words.split()[:8]:
                pattern = f"%{_escape_like(word)}%"
                in_thread = sa.select(messages.c.id).where(
                    messages.c.ticket_id == tickets.c.id,
                    messages.c.body.ilike(pattern, escape="\\"),
                )
                conditions.append(
                    sa.or_(
                        tickets.c.subject.ilike(pattern, escape="\\"),
                        accounts.c.establishment.ilike(pattern, escape="\\"),
                        sa.exists(in_thread),
                    )
                )
    resolved_last = sa.case((tickets.c.status.in_(("resolu", "ferme")), 1), else_=0)
    with engine.connect() as connection:
        base = select_tickets().where(*conditions)
        total = connection.execute(
            sa.select(sa.func.count()).select_from(base.subquery())
        ).scalar_one()
        rows = connection.execute(
            base.order_by(resolved_last, tickets.c.due_at, tickets.c.id)
            .limit(PER_PAGE)
            .offset((wanted.page - 1) * PER_PAGE)
        )
        found = [ticket_from_row(r) for r in rows]
        counts: dict[str, int] = dict(
            connection.execute(
                sa.select(tickets.c.status, sa.func.count()).group_by(tickets.c.status)
            ).all()
        )
        establishments = connection.execute(
            sa.select(accounts.c.id, accounts.c.establishment, accounts.c.login)
            .where(accounts.c.role == "etablissement")
            .order_by(accounts.c.establishment)
        ).all()
    return Queue(
        tickets=found,
        total=int(total),
        page=wanted.page,
        counts={s: int(counts.get(s, 0)) for s in STATUSES},
        establishments=[(r.id, r.establishment, r.login) for r in establishments],
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def is_overdue(ticket: Ticket, at: dt.datetime | None = None) -> bool:
    return ticket.open and ticket.due_at < (at or now())


def linked_slugs(body: str, aliases: Mapping[str, str], known: Iterable[str]) -> list[str]:
    """The articles a reply links to, by their current slug (an old one is resolved)."""
    known_slugs = set(known)
    found: list[str] = []
    for match in _ARTICLE_URL.finditer(body):
        slug = aliases.get(match[1], match[1])
        if slug in known_slugs and slug not in found:
            found.append(slug)
    return found


def record_links(engine: Engine, message_id: int, slugs: Iterable[str]) -> None:
    rows = [{"message_id": message_id, "slug": slug, "at": now()} for slug in slugs]
    if rows:
        with engine.begin() as connection:
            connection.execute(sa.insert(article_links), rows)
