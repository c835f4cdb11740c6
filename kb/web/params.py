"""Numbers, dates and ids from requests, checked strictly, with French messages.

Only ASCII digits count: `str.isdigit` and `int()` also take "²" or "٣", which then fail
further on or reach the database as something nobody typed.
"""

from __future__ import annotations

import datetime as dt
import re

from starlette.requests import Request

from kb.errors import BadRequest

DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
ID_MAX = 2**31 - 1  # an INTEGER column on PostgreSQL: anything larger names no row
BIG_MAX = 2**63 - 1  # a BIGINT column (sizes, offsets)
FIRST_YEAR, LAST_YEAR = 2000, 2100  # dates kb can have recorded or plan for


def digits(raw: str) -> bool:
    """ASCII digits only, and not so many that the number means nothing."""
    return 0 < len(raw) <= 19 and raw.isascii() and raw.isdigit()


def whole_number(raw: str, high: int = BIG_MAX) -> int | None:
    """A non-negative whole number written with ASCII digits, at most `high`; else None."""
    if not digits(raw):
        return None
    value = int(raw)
    return value if value <= high else None


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    text = raw[1:] if raw.startswith("-") else raw
    number = whole_number(text)
    if number is None:
        raise BadRequest(f"Le paramètre « {name} » doit être un nombre entier.")
    value = -number if raw.startswith("-") else number
    if not low <= value <= high:
        raise BadRequest(f"Le paramètre « {name} » doit être compris entre {low} et {high}.")
    return value


def id_param(request: Request, name: str) -> int | None:
    """An optional row id: empty is None; anything but a possible id is a clear 400."""
    raw = request.query_params.get(name, "")
    if raw == "":
        return None
    value = whole_number(raw, ID_MAX)
    if value is None or value == 0:
        raise BadRequest(f"Le paramètre « {name} » doit être un identifiant (un nombre entier).")
    return value


def date_param(request: Request, name: str, default: dt.date) -> dt.date:
    """AAAA-MM-JJ, a day that exists, between 2000 and 2100."""
    raw = request.query_params.get(name, "")
    if not raw:
        return default
    try:
        if not DATE_RE.match(raw):
            raise ValueError(raw)
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"La date « {raw} » doit s'écrire AAAA-MM-JJ.") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise BadRequest(f"La date « {raw} » doit être comprise entre {FIRST_YEAR} et {LAST_YEAR}.")
    return day
