"""Query parameters, checked, with French messages."""

from __future__ import annotations

from starlette.requests import Request

from kb.errors import BadRequest


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Le paramètre « {name} » doit être un nombre entier.") from None
    if not low <= value <= high:
        raise BadRequest(f"Le paramètre « {name} » doit être compris entre {low} et {high}.")
    return value
