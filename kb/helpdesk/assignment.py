"""Who handles a ticket: taking it, handing it over, and the events the thread shows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kb.clock import now
from kb.errors import BadRequest
from kb.helpdesk.accounts import AGENT_ROLES, Account
from kb.tables import accounts, ticket_events, tickets

OPEN_STATUSES = ("nouveau", "en_cours", "en_attente")  # as in the support queue


@dataclass(frozen=True)
class Agent:
    id: int
    name: str
    open_tickets: int = 0


@dataclass(frozen=True)
class Event:
    """A line of the thread that is not a message: 'Sam Support a pris le ticket'."""

    id: int
    at: dt.datetime
    kind: str  # "pris", "confie", "libere", "ferme"
    actor: str
    target: str | None

    @property
    def created_at(self) -> dt.datetime:  # ordered with the messages of the thread
        return self.at

    @property
    def text(self) -> str:
        if self.kind == "pris":
            return f"{self.actor} a pris le ticket en charge"
        if self.kind == "confie":
            return f"{self.actor} a confié le ticket à {self.target}"
        if self.kind == "ferme":
            return "Ticket fermé automatiquement : résolu et non rouvert"
        return f"{self.actor} a remis le ticket dans les non assignés"


def agents(engine: Engine) -> list[Agent]:
    """Every active agent with the open tickets assigned to them, by name."""
    assigned = (
        sa.select(tickets.c.assignee_id, sa.func.count().label("n"))
        .where(tickets.c.status.in_(OPEN_STATUSES), tickets.c.assignee_id.is_not(None))
        .group_by(tickets.c.assignee_id)
        .subquery()
    )
    query = (
        sa.select(accounts.c.id, accounts.c.first_name, accounts.c.last_name, assigned.c.n)
        .outerjoin(assigned, assigned.c.assignee_id == accounts.c.id)
        .where(accounts.c.role.in_(AGENT_ROLES), accounts.c.disabled_at.is_(None))
        .order_by(accounts.c.first_name, accounts.c.last_name, accounts.c.id)
    )
    with engine.connect() as connection:
        return [
            Agent(r.id, f"{r.first_name} {r.last_name}".strip(), int(r.n or 0))
            for r in connection.execute(query)
        ]


def unassigned_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                sa.select(sa.func.count()).where(
                    tickets.c.status.in_(OPEN_STATUSES), tickets.c.assignee_id.is_(None)
                )
            ).scalar_one()
        )


def assign(engine: Engine, ticket_id: int, actor: Account, assignee_id: int | None) -> bool:
    """Give the ticket to an agent (or to nobody); False when it already was theirs."""
    with engine.begin() as connection:
        if assignee_id is not None:
            target = connection.execute(
                sa.select(accounts.c.id).where(
                    accounts.c.id == assignee_id,
                    accounts.c.role.in_(AGENT_ROLES),
                    accounts.c.disabled_at.is_(None),
                )
            ).first()
            if target is None:
                raise BadRequest("Choisissez un agent du support dans la liste.")
        return assign_in(connection, ticket_id, actor, assignee_id)


def assign_in(
    connection: sa.Connection, ticket_id: int, actor: Account, assignee_id: int | None
) -> bool:
    """`assign` inside a transaction the caller holds (a reply that assigns its author)."""
    changed = connection.execute(
        sa.update(tickets)
        .where(
            tickets.c.id == ticket_id,
            sa.or_(tickets.c.assignee_id.is_(None), tickets.c.assignee_id != assignee_id)
            if assignee_id is not None
            else tickets.c.assignee_id.is_not(None),
        )
        .values(assignee_id=assignee_id)
    ).rowcount
    if not changed:
        return False
    if assignee_id is None:
        kind = "libere"
    elif assignee_id == actor.id:
        kind = "pris"
    else:
        kind = "confie"
    connection.execute(
        sa.insert(ticket_events).values(
            ticket_id=ticket_id, at=now(), actor_id=actor.id, kind=kind, target_id=assignee_id
        )
    )
    return True


def take_if_unassigned(connection: sa.Connection, ticket_id: int, agent: Account) -> None:
    """The first reply of an agent to an unassigned ticket makes it theirs."""
    taken = connection.execute(
        sa.update(tickets)
        .where(tickets.c.id == ticket_id, tickets.c.assignee_id.is_(None))
        .values(assignee_id=agent.id)
    ).rowcount
    if taken:
        connection.execute(
            sa.insert(ticket_events).values(
                ticket_id=ticket_id, at=now(), actor_id=agent.id, kind="pris", target_id=agent.id
            )
        )


def events(engine: Engine, ticket_id: int) -> list[Event]:
    actor, target = accounts.alias("actor"), accounts.alias("target")
    query = (
        sa.select(
            ticket_events.c.id,
            ticket_events.c.at,
            ticket_events.c.kind,
            actor.c.first_name,
            actor.c.last_name,
            target.c.first_name.label("target_first"),
            target.c.last_name.label("target_last"),
        )
        .outerjoin(actor, actor.c.id == ticket_events.c.actor_id)
        .outerjoin(target, target.c.id == ticket_events.c.target_id)
        .where(ticket_events.c.ticket_id == ticket_id)
        .order_by(ticket_events.c.at, ticket_events.c.id)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        Event(
            id=r.id,
            at=r.at if r.at.tzinfo else r.at.replace(tzinfo=dt.UTC),
            kind=r.kind,
            actor=f"{r.first_name or ''} {r.last_name or ''}".strip(),
            target=f"{r.target_first} {r.target_last}".strip() if r.target_first else None,
        )
        for r in rows
    ]
