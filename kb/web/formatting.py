"""French formats for what pages show."""

from __future__ import annotations

import datetime as dt
import re

from markupsafe import Markup, escape

from kb.clock import MONTHS


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


_URL = re.compile(
    r"(https?://[^\s<>\"']+[^\s<>\"'.,;:!?)]|(?<![\w/])/articles/[a-z0-9-]+(?:#[\w-]+)?)"
)


def linkify(text: str) -> Markup:
    """A message's text, escaped, with its web addresses and article paths made links."""
    out, cursor = [], 0
    for match in _URL.finditer(text):
        out.append(escape(text[cursor : match.start()]))
        url = match.group()
        external = url.startswith("http") and "/articles/" not in url
        rel = ' rel="noopener noreferrer nofollow"' if external else ""
        out.append(Markup(f'<a href="{escape(url)}"{rel}>{escape(url)}</a>'))
        cursor = match.end()
    out.append(escape(text[cursor:]))
    return Markup("").join(out)
