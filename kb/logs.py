"""Logs: one JSON line per event on stdout, with the request's id, and no secret in any line."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

# What a line may carry besides its message, when the code that logs it knows it.
FIELDS = ("method", "path", "route", "status", "duration_ms", "account_id", "client", "bytes_in")

# Secrets that reach a log line through a path, a URL, a header or an exception's text; each
# with the words it needs, so that the many lines without any of them cost no search.
_REDACTIONS = (
    # Single-use links: the token is the whole secret.
    (
        ("/activation/", "/confirmation-email/", "/annulation-email/"),
        re.compile(r"(/(?:activation|confirmation-email|annulation-email)/)[^/\s?#\"'<>]+"),
        r"\1***",
    ),
    # Query strings and form-like text: token=…, password=…, mot_de_passe=…
    (
        ("=", ":"),
        re.compile(
            r"(?i)\b((?:[\w-]*token|jeton|password|passwd|mot[_-]de[_-]passe|mdp|secret[\w-]*"
            r"|csrf|kb_session|kb_csrf|api[_-]?key)[\"']?\s*[=:]\s*[\"']?)[^\s\"'&;,]+"
        ),
        r"\1***",
    ),
    # user:password@ in any URL (database, SMTP).
    (("://",), re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@"), r"\1***@"),
    # Authorization: Bearer …, Basic …
    (
        ("uthorization", "UTHORIZATION"),
        re.compile(r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?\w+\s+)[^\s\"']+"),
        r"\1***",
    ),
)
# Fields that hold no secret by construction: a route's template, an address, a number.
_PLAIN = frozenset({"method", "route", "status", "duration_ms", "account_id", "client", "bytes_in"})


# Any of those words, in one search: most lines (a request's) have none.
_NEEDLES = re.compile("|".join(re.escape(n) for needles, _, _ in _REDACTIONS for n in needles))
# What orjson cannot write (an integer beyond 64 bits): the standard library's encoder.
_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str).encode


def _encode(entry: dict[str, Any]) -> str:
    """One line of JSON, in UTF-8 as it is (what `ensure_ascii=False` writes). orjson, in
    Rust: a request's line in a tenth of the standard library's time, and a request line
    formatted in the middle of a search's work took 18 µs, 10 µs with it (bench/README.md)."""
    try:
        return orjson.dumps(entry, default=str).decode()
    except TypeError:
        return _ENCODE(entry)


def redact(text: str) -> str:
    """`text` with every token, password and credential replaced by ***."""
    if _NEEDLES.search(text) is None:
        return text
    for needles, pattern, replacement in _REDACTIONS:
        if any(needle in text for needle in needles):
            text = pattern.sub(replacement, text)
    return text


@dataclass
class RequestContext:
    """What every line logged while a request is served says about it."""

    request_id: str

    def add_to(self, entry: dict[str, Any]) -> None:
        """The request's id, and what else is known of it when the line is logged."""
        entry["request_id"] = self.request_id


current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "kb_request", default=None
)


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: time (UTC), level, logger, message, request and traceback."""

    # The last second formatted and its text up to the seconds, replaced in one assignment (a
    # formatter may serve several handlers, each with its own lock).
    _second_text: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        extra = record.__dict__
        entry: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        context = current.get()
        if context is not None:
            context.add_to(entry)
        for name in FIELDS:
            value = extra.get(name)
            if value is not None:
                plain = name in _PLAIN or not isinstance(value, str)
                entry[name] = value if plain else redact(value)
        if record.exc_info:
            entry["traceback"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return _encode(entry)

    def _time(self, created: float) -> str:
        """ISO 8601 in UTC to the millisecond (2026-12-03T17:04:05.123Z); the date and time
        up to the second made once a second, not for each of its lines."""
        second = math.floor(created)
        micro = round((created - second) * 1e6)  # as datetime rounds it
        if micro >= 1_000_000:
            second, micro = second + 1, 0
        known, text = self._second_text
        if second != known:
            text = dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second_text = (second, text)
        return f"{text}.{micro // 1000:03d}Z"


class TextFormatter(logging.Formatter):
    """The editors' preview: short readable lines, still without secrets."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def config(json_lines: bool = True) -> dict[str, Any]:
    """The logging configuration of `kb serve` and of its workers (uvicorn applies it in each):
    kb's info lines and uvicorn's own, on stdout; uvicorn's access log replaced by kb's
    request line, which shows a route's template instead of its tokens."""
    formatter = "kb.logs.JsonFormatter" if json_lines else "kb.logs.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"kb": {"()": formatter}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "kb",
                "stream": "ext://sys.stdout",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            # Alembic's set-up chatter is left out; the migrations it runs are kept.
            "alembic": {"level": "WARNING"},
            "alembic.runtime.migration": {"level": "INFO"},
        },
        "root": {"handlers": ["stdout"], "level": "INFO"},
    }
