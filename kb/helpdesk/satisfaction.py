"""The establishment's opinion of a resolved ticket, and resolved tickets closed for good."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kb.clock import now
from kb.db import upsert_many
from kb.errors import BadRequest
from kb.helpdesk.business_hours import add_business_hours
from kb.helpdesk.tickets import Ticket
from kb.tables import accounts, ratings, ticket_events, tickets

COMMENT_MAX = 2000
RATED = ("resolu", "ferme")


@dataclass(frozen=True)
class Rating:
    satisfied: bool
    comment: str
    at: dt.datetime

    @property
    def label(self) -> str:
        return "Satisfait" if self.satisfied else "Pas satisfait"


@dataclass(frozen=True)
class Tally:
    """Opinions on a group of tickets (a category, an agent)."""

    name: str
    satisfied: int
    unsatisfied: int

    @property
    def percent(self) -> int:
        total = self.satisfied + self.unsatisfied
        return round(100 * self.satisfied / total) if total else 0


def link_token(secret: bytes, reference: str) -> str:
    """What the mail's link carries: it rates this ticket only, without logging in."""
    return hmac.new(secret, f"avis:{reference}".encode(), hashlib.sha256).hexdigest()[:32]


def token_valid(secret: bytes, reference: str, token: str) -> bool:
    # As bytes: compare_digest raises TypeError on a str with non-ASCII characters ("²").
    return hmac.compare_digest(
        link_token(secret, reference).encode(), token.encode("utf-8", "replace")
    )


def rate(engine: Engine, ticket: Ticket, satisfied: bool, comment: str) -> None:
    """Record (or change) the establishment's opinion of its resolved ticket."""
    if ticket.status not in RATED:
        raise BadRequest("Vous pourrez donner votre avis quand le ticket sera résolu.")
    comment = comment.strip()
    if len(comment) > COMMENT_MAX:
        raise BadRequest(f"Le commentaire compte {COMMENT_MAX} caractères au plus.")
    row = {"ticket_id": ticket.id, "satisfied": satisfied, "comment": comment,
           "agent_id": ticket.assignee_id, "at": now()}  # fmt: skip
    with engine.begin() as connection:
        upsert_many(connection, ratings, ["ticket_id"], [],
                    ["satisfied", "comment", "agent_id", "at"], [row])  # fmt: skip


def rating_of(engine: Engine, ticket_id: int) -> Rating | None:
    with engine.connect() as connection:
        row = connection.execute(sa.select(ratings).where(ratings.c.ticket_id == ticket_id)).first()
    return Rating(row.satisfied, row.comment, row.at) if row else None


def close_resolved(
    engine: Engine, days: int, calendar: str,
    notify: Callable[[sa.Connection, int], object] | None = None,
) -> list[int]:  # fmt: skip
    """Close the tickets resolved `days` business days ago and not reopened; their ids.

    Each is claimed by its own update (status still "resolu"), so replicas running this at
    the same moment close each ticket once; `notify(connection, ticket_id)` queues the
    closing notice in the claim's transaction, so it leaves once too."""
    at = now()
    with engine.connect() as connection:
        candidates = connection.execute(
            sa.select(tickets.c.id, tickets.c.resolved_at).where(
                tickets.c.status == "resolu", tickets.c.resolved_at.is_not(None)
            )
        ).all()
    closed: list[int] = []
    for row in candidates:
        ticket_id: int = row.id
        if add_business_hours(row.resolved_at, days * 24, calendar) > at:
            continue
        with engine.begin() as connection:
            claimed = connection.execute(
                sa.update(tickets)
                .where(tickets.c.id == ticket_id, tickets.c.status == "resolu")
                .values(status="ferme", updated_at=at)
            ).rowcount
            if claimed:
                connection.execute(
                    sa.insert(ticket_events).values(
                        ticket_id=ticket_id, at=at, actor_id=None, kind="ferme", target_id=None
                    )
                )
                if notify:
                    notify(connection, ticket_id)
                closed.append(ticket_id)
    return closed


def by_category(
    engine: Engine, since: dt.datetime, until: dt.datetime, titles: dict[str, str]
) -> list[Tally]:
    """Opinions given over the period, per category of ticket."""
    query = (
        sa.select(tickets.c.category, ratings.c.satisfied, sa.func.count().label("n"))
        .join(tickets, tickets.c.id == ratings.c.ticket_id)
        .where(ratings.c.at >= since, ratings.c.at < until)
        .group_by(tickets.c.category, ratings.c.satisfied)
    )
    return _tallies(engine, query, lambda key: titles.get(key or "", key or ""))


def by_agent(engine: Engine, since: dt.datetime, until: dt.datetime) -> list[Tally]:
    """Opinions given over the period, per agent who handled the ticket."""
    name = (accounts.c.first_name + " " + accounts.c.last_name).label("name")
    query = (
        sa.select(name, ratings.c.satisfied, sa.func.count().label("n"))
        .outerjoin(accounts, accounts.c.id == ratings.c.agent_id)
        .where(ratings.c.at >= since, ratings.c.at < until)
        .group_by(name, ratings.c.satisfied)
    )
    return _tallies(engine, query, lambda key: key or "Non assigné")


def _tallies(
    engine: Engine, query: sa.Select[Any], name: Callable[[str | None], str]
) -> list[Tally]:
    counts: dict[str, list[int]] = {}
    with engine.connect() as connection:
        for row in connection.execute(query):
            label = name(row[0])
            counts.setdefault(label, [0, 0])[0 if row[1] else 1] += int(row[2])
    found = [Tally(label, yes, no) for label, (yes, no) in counts.items()]
    return sorted(found, key=lambda t: (-(t.satisfied + t.unsatisfied), t.name))
