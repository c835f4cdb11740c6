"""The one clock: instants in UTC, days and words in Paris time, as French writes them."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip
DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


def now() -> dt.datetime:
    """This instant, aware, in UTC: what every table stores."""
    return dt.datetime.now(dt.UTC)


def today() -> dt.date:
    """Today in Paris: the day editors and users live in."""
    return dt.datetime.now(PARIS).date()


def as_utc(moment: dt.datetime) -> dt.datetime:
    """An instant in UTC; a naive one is taken as UTC already (SQLite keeps no zone)."""
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
