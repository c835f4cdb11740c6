"""French formats for what pages show."""

from __future__ import annotations

import datetime as dt

MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip


def french_date(value: str | dt.date | None) -> str:
    """'2026-11-02' -> '2 novembre 2026' (1er for the first day, as French writes it)."""
    if value is None or value == "":
        return ""
    day = dt.date.fromisoformat(value) if isinstance(value, str) else value
    number = "1er" if day.day == 1 else str(day.day)
    return f"{number} {MONTHS[day.month - 1]} {day.year}"


def results_count(total: int) -> str:
    if total == 0:
        return "Aucun résultat"
    return f"{total} résultat" + ("s" if total > 1 else "")
