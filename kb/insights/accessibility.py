"""The RGAA 4.1 audit grid (docs/accessibilite/) and the statement derived from it."""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kb.errors import KbError

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def statement_dir(package: Path = PACKAGE_DIR) -> Path:
    """kb/accessibilite in an installed wheel; the checkout's docs/accessibilite/ otherwise."""
    installed = package / "accessibilite"
    return installed if installed.is_dir() else package.parent / "docs" / "accessibilite"


STATEMENT_DIR = statement_dir()
GRID_FILE = "grille-rgaa.yml"
# RGAA 4.1: 13 themes and how many criteria each one holds (106 in all).
THEMES = {
    1: ("Images", 9),
    2: ("Cadres", 2),
    3: ("Couleurs", 3),
    4: ("Multimédia", 13),
    5: ("Tableaux", 8),
    6: ("Liens", 2),
    7: ("Scripts", 5),
    8: ("Éléments obligatoires", 10),
    9: ("Structuration de l'information", 4),
    10: ("Présentation de l'information", 14),
    11: ("Formulaires", 13),
    12: ("Navigation", 11),
    13: ("Consultation", 12),
}
RESULTS = {"C": "conforme", "NC": "non conforme", "NA": "non applicable"}


class GridError(KbError):
    """The audit grid cannot be read: path:line and what is wrong."""


@dataclass(frozen=True)
class Criterion:
    number: str
    title: str
    result: str  # C, NC or NA
    checked: str  # how it was checked
    note: str

    @property
    def theme(self) -> str:
        return THEMES[int(self.number.split(".")[0])][0]


@dataclass(frozen=True)
class SamplePage:
    title: str
    path: str
    role: str


@dataclass(frozen=True)
class Statement:
    date: dt.date
    criteria: tuple[Criterion, ...]
    sample: tuple[SamplePage, ...]
    environment: tuple[str, ...]
    tools: tuple[str, ...]
    exempt: tuple[str, ...]

    def count(self, result: str) -> int:
        return self._counts[result]

    @functools.cached_property
    def _counts(self) -> Counter[str]:
        """Criteria by result, counted once: every page's footer shows the status."""
        return Counter(c.result for c in self.criteria)

    @functools.cached_property
    def rate(self) -> int:
        """Conforming criteria among the applicable ones, in percent, rounded down: a rate
        is never shown higher than it is."""
        applicable = self.count("C") + self.count("NC")
        return 100 * self.count("C") // applicable if applicable else 100

    @functools.cached_property
    def status(self) -> str:
        """The law's three words: total only when nothing applicable fails."""
        if self.count("NC") == 0:
            return "totalement conforme"
        return "partiellement conforme" if self.rate >= 50 else "non conforme"

    @property
    def failing(self) -> tuple[Criterion, ...]:
        return tuple(c for c in self.criteria if c.result == "NC")


def load(folder: Path = STATEMENT_DIR) -> Statement:
    """The grid, checked: the 106 criteria, each once, each with a result and a method."""
    path = folder / GRID_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GridError(f"{path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise GridError(f"{path}:{line}: YAML illisible ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise GridError(f"{path}:1: la grille doit être un dictionnaire")
    problems: list[str] = []
    criteria = _criteria(data.get("criteres"), problems)
    expected = [f"{t}.{n}" for t, (_, count) in THEMES.items() for n in range(1, count + 1)]
    found = [c.number for c in criteria]
    if found != expected:
        missing = sorted(set(expected) - set(found), key=_order)
        extra = sorted(set(found) - set(expected), key=_order)
        problems.append(
            "les critères doivent être les 106 du RGAA 4.1, dans l'ordre"
            + (f" ; manquants : {', '.join(missing)}" if missing else "")
            + (f" ; en trop ou répétés : {', '.join(extra)}" if extra else "")
        )
    sample = tuple(
        SamplePage(str(p.get("titre", "")), str(p.get("adresse", "")), str(p.get("profil", "")))
        for p in data.get("echantillon") or []
        if isinstance(p, dict)
    )
    if not sample:
        problems.append("l'échantillon de pages (echantillon) est vide")
    date = data.get("date")
    if not isinstance(date, dt.date):
        problems.append("date : attendue sous la forme AAAA-MM-JJ")
    if problems:
        raise GridError("\n".join(f"{path}: {p}" for p in problems))
    assert isinstance(date, dt.date)
    return Statement(
        date=date,
        criteria=tuple(criteria),
        sample=sample,
        environment=tuple(str(e) for e in data.get("environnement") or []),
        tools=tuple(str(t) for t in data.get("outils") or []),
        exempt=tuple(str(e) for e in data.get("non_soumis") or []),
    )


def _order(number: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in number.split("."))


def _criteria(raw: Any, problems: list[str]) -> list[Criterion]:
    if not isinstance(raw, list):
        problems.append("criteres : une liste est attendue")
        return []
    criteria = []
    for item in raw:
        if not isinstance(item, dict):
            problems.append(f"critère illisible : {item!r}")
            continue
        number = str(item.get("numero", ""))
        result = str(item.get("resultat", ""))
        checked = str(item.get("verification", "")).strip()
        if result not in RESULTS:
            problems.append(f"critère {number} : resultat doit valoir C, NC ou NA, pas {result!r}")
        if not checked:
            problems.append(f"critère {number} : verification (comment il a été vérifié) manque")
        if result == "NC" and not str(item.get("note", "")).strip():
            problems.append(f"critère {number} : une non-conformité dit ce qui échoue (note)")
        criteria.append(
            Criterion(
                number, str(item.get("titre", "")), result, checked, str(item.get("note", ""))
            )
        )
    return criteria
