"""The RGAA 4.1 audit grid and the statement generated from it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Web, article, page

from kb.insights import accessibility
from kb.insights.accessibility import GridError


@pytest.fixture
def web(make_web: Callable[..., Web]) -> Web:
    return make_web({"abonnement/a.md": article("Une question")})


def test_the_shipped_grid_holds_the_106_criteria_each_checked() -> None:
    statement = accessibility.load()
    assert len(statement.criteria) == 106
    assert all(c.result in ("C", "NC", "NA") and c.checked for c in statement.criteria)
    roles = {page.role for page in statement.sample}
    assert {"visiteur", "établissement", "agent du support", "administrateur"} <= roles
    # What was really used, and what was not: a statement never implies a screen reader.
    environment = " ".join(statement.environment).lower()
    assert "chromium" in environment and "playwright" in environment
    assert "aucun lecteur d'écran" in environment
    assert any("axe-core" in t for t in statement.tools)


def test_the_statement_and_the_footer_say_what_the_grid_says(web: Web) -> None:
    statement = accessibility.load()
    shown = page(web, "/accessibilite")
    text = shown.text
    assert f"Le centre d'assistance est {statement.status} avec" in text
    assert f"{statement.rate} %" in text
    # "totalement conforme" only at 100 %; every failing criterion listed with what fails.
    assert (statement.status == "totalement conforme") == (statement.rate == 100)
    for criterion in statement.failing:
        assert f"Critère {criterion.number}" in text and criterion.note in text
    assert f"Accessibilité : {statement.status}" in text  # the footer
    for sampled in statement.sample:
        assert sampled.title in text
    # A contact that works without an account, and the recourse links.
    hrefs = [href for href, _ in shown.links]
    assert any(h.startswith("mailto:support@cpro-education.fr?subject=") for h in hrefs)
    assert "https://formulaire.defenseurdesdroits.fr/" in hrefs
    assert "https://www.defenseurdesdroits.fr/carte-des-delegues" in hrefs


def grid(tmp_path: Path, change: dict[str, tuple[str, str]]) -> Path:
    """The shipped grid with some criteria's result and note changed."""
    text = (accessibility.STATEMENT_DIR / accessibility.GRID_FILE).read_text(encoding="utf-8")
    for number, (result, note) in change.items():
        pattern = rf'(- numero: "{re.escape(number)}"\n    titre: .*\n    resultat: )\w+'
        text, n = re.subn(pattern, rf'\g<1>{result}\n    note: "{note}"', text)
        assert n == 1, number
    (tmp_path / accessibility.GRID_FILE).write_text(text, encoding="utf-8")
    return tmp_path


def test_a_failing_criterion_makes_it_partial_and_is_listed(web: Web, tmp_path: Path) -> None:
    folder = grid(tmp_path, {"10.11": ("NC", "Le rapport déborde à 320 px.")})
    statement = accessibility.load(folder)
    assert statement.status == "partiellement conforme"
    shipped = accessibility.load()
    assert statement.count("NC") == shipped.count("NC") + 1
    conforming = statement.count("C")
    assert statement.rate == 100 * conforming // (conforming + statement.count("NC"))
    services = web.app.state.services
    services.templates.env.globals["accessibility"] = statement
    text = page(web, "/accessibilite").text
    assert "Critère 10.11" in text and "Le rapport déborde à 320 px." in text
    assert "Accessibilité : partiellement conforme" in text


def test_below_half_it_says_non_conforme(tmp_path: Path) -> None:
    applicable = [c.number for c in accessibility.load().criteria if c.result == "C"]
    folder = grid(tmp_path, {n: ("NC", "Échoue.") for n in applicable[: len(applicable) // 2 + 1]})
    assert accessibility.load(folder).status == "non conforme"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('- numero: "13.12"', '- numero: "13.13"'), "manquants : 13.12"),
        (lambda t: t.replace("resultat: NA", "resultat: peut-être", 1), "resultat doit valoir"),
        (lambda t: t.replace("criteres:", "criteres: [", 1), "YAML illisible"),
    ],
)
def test_a_broken_grid_says_where(tmp_path: Path, edit: object, message: str) -> None:
    text = (accessibility.STATEMENT_DIR / accessibility.GRID_FILE).read_text(encoding="utf-8")
    (tmp_path / accessibility.GRID_FILE).write_text(edit(text), encoding="utf-8")  # type: ignore[operator]
    with pytest.raises(GridError, match=re.escape(message)):
        accessibility.load(tmp_path)


def test_a_failing_criterion_needs_a_note(tmp_path: Path) -> None:
    folder = grid(tmp_path, {"3.1": ("NC", "")})
    with pytest.raises(
        GridError, match=re.escape("critère 3.1 : une non-conformité dit ce qui échoue")
    ):
        accessibility.load(folder)
