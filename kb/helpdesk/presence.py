"""Which agents have a ticket open right now, and which of them are writing a reply."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kb.clock import now
from kb.db import upsert_many
from kb.helpdesk.accounts import Account
from kb.tables import accounts, messages, presence

# A page says it is still open every few seconds (its event stream); one that stopped is gone.
SEEN_SECONDS = 20
TYPING_SECONDS = 8


@dataclass(frozen=True)
class Colleague:
    account_id: int
    name: str
    writing: bool

    @property
    def words(self) -> str:
        return (
            f"{self.name} écrit une réponse" if self.writing else f"{self.name} consulte ce ticket"
        )


def here(engine: Engine, ticket_id: int, agent: Account, *, typing: bool = False) -> None:
    """This agent has the ticket open (and is typing, when `typing`)."""
    at = now()
    row = {"ticket_id": ticket_id, "account_id": agent.id, "seen_at": at,
           "typing_at": at if typing else None}  # fmt: skip
    replace = ["seen_at", "typing_at"] if typing else ["seen_at"]
    with engine.begin() as connection:
        upsert_many(connection, presence, ["ticket_id", "account_id"], [], replace, [row])
        # Old rows of closed pages go as new ones come: the table stays as small as the team.
        connection.execute(
            sa.delete(presence).where(presence.c.seen_at < at - dt.timedelta(hours=1))
        )


def gone(engine: Engine, ticket_id: int, agent: Account) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.delete(presence).where(
                presence.c.ticket_id == ticket_id, presence.c.account_id == agent.id
            )
        )


def colleagues(engine: Engine, ticket_id: int, agent: Account) -> list[Colleague]:
    """The other agents on this ticket now, writers first."""
    at = now()
    query = (
        sa.select(
            presence.c.account_id, presence.c.typing_at, accounts.c.first_name, accounts.c.last_name
        )
        .join(accounts, accounts.c.id == presence.c.account_id)
        .where(
            presence.c.ticket_id == ticket_id,
            presence.c.account_id != agent.id,
            presence.c.seen_at >= at - dt.timedelta(seconds=SEEN_SECONDS),
        )
        .order_by(accounts.c.first_name, accounts.c.last_name)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    typing_since = at - dt.timedelta(seconds=TYPING_SECONDS)
    found = [
        Colleague(
            r.account_id,
            f"{r.first_name} {r.last_name}".strip(),
            r.typing_at is not None and _utc(r.typing_at) >= typing_since,
        )
        for r in rows
    ]
    return sorted(found, key=lambda c: not c.writing)


def latest_message(engine: Engine, ticket_id: int) -> tuple[int, str | None]:
    """The last visible message of the thread and its author, to tell open pages it came."""
    query = (
        sa.select(messages.c.id, accounts.c.first_name, accounts.c.last_name)
        .join(accounts, accounts.c.id == messages.c.author_id)
        .where(messages.c.ticket_id == ticket_id, messages.c.held_at.is_(None))
        .order_by(messages.c.id.desc())
        .limit(1)
    )
    with engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None:
        return 0, None
    return int(row.id), f"{row.first_name} {row.last_name}".strip()


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
