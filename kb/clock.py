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


def in_words(moment: dt.datetime, zone: ZoneInfo = PARIS) -> str:
    """'jeudi 3 décembre 2026 à 14 h 05', in Paris time."""
    local = moment.astimezone(zone)
    day = "1er" if local.day == 1 else str(local.day)
    return (
        f"{DAYS[local.weekday()]} {day} {MONTHS[local.month - 1]} {local.year} "
        f"à {local.hour} h {local.minute:02d}"
    )


def short(moment: dt.datetime, zone: ZoneInfo = PARIS) -> str:
    """'03/12/2026 14:05', for tables."""
    return moment.astimezone(zone).strftime("%d/%m/%Y %H:%M")
