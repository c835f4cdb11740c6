"""How often each canned reply went out in a reply: shown to editors in /rapport."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kb.clock import today
from kb.db import upsert_many
from kb.tables import canned_uses


def record(engine: Engine, slugs: Collection[str]) -> None:
    """One use of each of these canned replies, today."""
    rows = [{"slug": slug, "day": today(), "uses": 1} for slug in sorted(set(slugs))]
    if rows:
        with engine.begin() as connection:
            upsert_many(connection, canned_uses, ["slug", "day"], ["uses"], [], rows)


def most_used(engine: Engine, since: dt.date, until: dt.date) -> list[tuple[str, int]]:
    """(slug, uses) over the period, the most used first."""
    total = sa.func.sum(canned_uses.c.uses).label("total")
    query = (
        sa.select(canned_uses.c.slug, total)
        .where(canned_uses.c.day >= since, canned_uses.c.day <= until)
        .group_by(canned_uses.c.slug)
        .order_by(total.desc(), canned_uses.c.slug)
    )
    with engine.connect() as connection:
        return [(row.slug, int(row.total)) for row in connection.execute(query)]
