"""Typed values of a YAML header (text, number, date, slug, list), each fault at its key's line."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from kb.knowledge.problems import Problem, closest
from kb.knowledge.slugs import SLUG_RE, slugify


class FieldChecker:
    """Type checks of YAML values, each failure a Problem at the key's line."""

    def __init__(
        self, path: Path, lines: dict[str, int], problems: list[Problem], default_line: int = 1
    ) -> None:
        self.path, self.lines, self.problems, self.default_line = (
            path,
            lines,
            problems,
            default_line,
        )

    def line(self, key: str) -> int:
        return self.lines.get(key, self.default_line)

    def fail(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.path, self.line(key), message))

    def unknown_keys(self, data: dict[str, Any], known: tuple[str, ...]) -> None:
        for key in data:
            if key not in known:
                hint = closest(key, known) or f" (clés possibles : {', '.join(known)})"
                self.fail(key, f"clé inconnue « {key} »{hint}")

    def _get(self, data: dict[str, Any], key: str, kind: str, ok: Callable[[Any], bool]) -> Any:
        value = data.get(key)
        if value is None:
            return None
        if not ok(value):
            self.fail(key, f"« {key} » doit être {kind}, pas {describe(value)}")
            return None
        return value

    def string(self, data: dict[str, Any], key: str, required: bool = False) -> str | None:
        value = self._get(
            data,
            key,
            "un texte",
            lambda v: isinstance(v, str | int | float) and not isinstance(v, bool),
        )
        text = str(value).strip() if value is not None else None
        if required and not text:
            if key in data and data[key] is not None and value is None:
                return None  # wrong type already reported
            self.fail(key, f"« {key} » manquant : chaque fichier doit avoir « {key}: … »")
            return None
        return text

    def integer(
        self, data: dict[str, Any], key: str, low: int | None = None, high: int | None = None
    ) -> int | None:
        kind = "un nombre entier" if low is None else f"un nombre entier de {low} à {high}"
        value = self._get(data, key, kind, lambda v: isinstance(v, int) and not isinstance(v, bool))
        if value is not None and low is not None and high is not None and not low <= value <= high:
            self.fail(key, f"« {key} » doit être {kind}, pas {value}")
            return None
        return cast("int | None", value)

    def boolean(self, data: dict[str, Any], key: str) -> bool | None:
        value = self._get(data, key, "true ou false", lambda v: isinstance(v, bool))
        return cast("bool | None", value)

    def date(self, data: dict[str, Any], key: str) -> dt.date | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                pass
        self.fail(key, f"« {key} » doit être une date AAAA-MM-JJ, pas {describe(value)}")
        return None

    def slug(self, data: dict[str, Any], key: str) -> str | None:
        value = self.string(data, key)
        if value is not None and not SLUG_RE.match(value):
            self.fail(
                key,
                f"« {key} » invalide « {value} » : minuscules sans accents, chiffres et tirets "
                f"(par exemple « {slugify(value) or 'mon-article'} »)",
            )
            return None
        return value

    def string_list(
        self, data: dict[str, Any], key: str, comma: bool = False, slugs: bool = False
    ) -> list[str]:
        value = data.get(key)
        if value is None:
            return []
        if isinstance(value, str) and comma:
            items: list[Any] = [v.strip() for v in value.split(",")]
        elif isinstance(value, str) and slugs:
            items = [value]
        elif isinstance(value, list):
            items = value
        else:
            self.fail(key, f"« {key} » doit être une liste, pas {describe(value)}")
            return []
        result: list[str] = []
        for item in items:
            if not isinstance(item, str | int) or isinstance(item, bool):
                self.fail(key, f"« {key} » ne contient que des textes, pas {describe(item)}")
                continue
            text = str(item).strip()
            if not text:
                continue
            if slugs and not SLUG_RE.match(text):
                self.fail(key, f"« {key} » : adresse invalide « {text} »")
                continue
            result.append(text)
        return result


def describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"le booléen {str(value).lower()}"
    if isinstance(value, dict):
        return "une liste de clés"
    if isinstance(value, list):
        return "une liste"
    if isinstance(value, int | float):
        return f"le nombre {value}"
    if isinstance(value, dt.date):
        return f"la date {value.isoformat()}"
    return f"« {value} »"
