"""Limits on attempts (logins, password e-mails): each attempt is counted before it is acted on.

An attempt is reserved by one compare-and-swap UPDATE on its row, so N parallel requests are
counted one by one on SQLite and PostgreSQL alike: none of them is checked before the earlier
ones are recorded.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kb.tables import throttles

TRIES = 50  # compare-and-swap rounds before an attempt is refused as if limited


@dataclass(frozen=True)
class Rule:
    """`free` attempts per `window`; then either a wait that doubles with each attempt (2 s,
    4 s… up to `max_wait`), or, without `backoff`, nothing more until the window ends."""

    free: int
    window: dt.timedelta
    backoff: bool = False
    max_wait: dt.timedelta = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Reservation:
    """An attempt counted on `key`; `release` gives it back (it turned out not to count)."""

    key: str
    version: int
    blocked_before: dt.datetime | None


@dataclass(frozen=True)
class Limited:
    seconds: int


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _insert_missing(engine: Engine, key: str, at: dt.datetime) -> None:
    with engine.begin() as connection:
        statement: Any
        if connection.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            statement = pg_insert(throttles)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            statement = sqlite_insert(throttles)
        connection.execute(
            statement.values(
                key=key, count=0, window_start=at, blocked_until=None, version=0
            ).on_conflict_do_nothing(index_elements=["key"])
        )


def take(engine: Engine, key: str, rule: Rule, at: dt.datetime) -> Reservation | Limited:
    """Count one attempt on `key`, or say how long to wait when the rule forbids it now."""
    key = key[:320]
    for _ in range(TRIES):
        with engine.connect() as connection:
            row = connection.execute(sa.select(throttles).where(throttles.c.key == key)).first()
        if row is None:
            _insert_missing(engine, key, at)
            continue
        blocked = _utc(row.blocked_until)
        if blocked is not None and blocked > at:
            return Limited(max(1, math.ceil((blocked - at).total_seconds())))
        count, start = int(row._mapping["count"]), _utc(row.window_start)
        assert start is not None
        if at - start >= rule.window:  # a quiet window: what came before is forgotten
            count, start = 0, at
        count += 1
        if rule.backoff:
            start = at  # the window runs from the last attempt
            until = None
            if count >= rule.free:
                wait = dt.timedelta(seconds=2 ** (count - rule.free + 1))
                until = at + min(wait, rule.max_wait)
        else:
            until = start + rule.window if count >= rule.free else None
        with engine.begin() as connection:
            swapped = connection.execute(
                sa.update(throttles)
                .where(throttles.c.key == key, throttles.c.version == row.version)
                .values(count=count, window_start=start, blocked_until=until,
                        version=row.version + 1)
            ).rowcount  # fmt: skip
        if swapped == 1:
            return Reservation(key, row.version + 1, blocked)
    return Limited(1)  # the row never held still: as busy as that, the answer is to wait


def release(engine: Engine, reservation: Reservation) -> None:
    """This attempt does not count (a right password on its address); the rest still do."""
    with engine.begin() as connection:
        connection.execute(
            sa.update(throttles)
            .where(throttles.c.key == reservation.key)
            .values(
                count=sa.case((throttles.c.count > 0, throttles.c.count - 1), else_=0),
                # Nobody counted since: the wait is what it was before this attempt.
                blocked_until=sa.case(
                    (throttles.c.version == reservation.version, reservation.blocked_before),
                    else_=throttles.c.blocked_until,
                ),
                version=throttles.c.version + 1,
            )
        )


def clear(engine: Engine, key: str) -> None:
    """Every attempt on `key` forgotten: its owner proved who they are."""
    with engine.begin() as connection:
        connection.execute(
            sa.update(throttles)
            .where(throttles.c.key == key[:320])
            .values(count=0, blocked_until=None, version=throttles.c.version + 1)
        )
