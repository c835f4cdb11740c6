"""French formats for what pages show."""

from __future__ import annotations

import datetime as dt
import re

from markupsafe import Markup, escape

from kb.clock import MONTHS
from kb.errors import KbError


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


def human_size(size: float) -> str:
    """'6 Go', '12,5 Mo': French units, decimal comma."""
    for unit in ("octets", "Ko", "Mo", "Go", "To"):
        if size < 1024 or unit == "To":
            text = f"{size:.1f}".rstrip("0").rstrip(".") if unit != "octets" else str(int(size))
            return f"{text.replace('.', ',')} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def error_text(exc: KbError) -> str:
    """An error's message as a reader sees it: its sizes in Ko, Mo, Go."""
    if not exc.sizes:
        return exc.message
    return exc.template.format(**{name: human_size(size) for name, size in exc.sizes.items()})
