"""axe-core in Chromium: zero violations on every kind of page, and in the states JS creates."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from .conftest import Server
from .test_reflow import PHONE, ROLES, every_page

pytestmark = pytest.mark.browser

AXE = Axe()

PAGES = {
    "accueil": ("/", 200),
    "recherche avec résultats": ("/recherche?q=mot+de+passe", 200),
    "recherche filtrée": ("/recherche?q=abonnement&categorie=abonnement", 200),
    "recherche sans résultat": ("/recherche?q=xylophone", 200),
    "recherche vide": ("/recherche?q=", 200),
    "catégorie": ("/categories/compte-utilisateur", 200),
    "article": ("/articles/modifier-son-mot-de-passe", 200),
    "article après un vote": ("/articles/modifier-son-mot-de-passe?vote=non#vote", 200),
    "page introuvable": ("/cette-page-n-existe-pas", 404),
    "article introuvable": ("/articles/n-existe-pas", 404),
    "déclaration d'accessibilité": ("/accessibilite", 200),
}


def violations(page: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = AXE.run(page).response["violations"]
    return found


def report(found: list[dict[str, Any]]) -> str:
    lines = []
    for v in found:
        lines.append(f"{v['id']} ({v['impact']}) : {v['help']}")
        for node in v["nodes"]:
            lines.append(f"    {', '.join(map(str, node['target']))} : {node['failureSummary']}")
    return "\n".join(lines)


@pytest.mark.parametrize(("path", "status"), PAGES.values(), ids=PAGES.keys())
def test_no_axe_violation(page: Page, path: str, status: int) -> None:
    response = page.goto(path)
    assert response is not None and response.status == status
    expect(page.get_by_role("heading", level=1)).to_have_count(1)
    found = violations(page)
    assert not found, f"axe sur {path} :\n{report(found)}"


def test_no_axe_violation_with_the_suggestions_open(page: Page) -> None:
    page.goto("/")
    page.get_by_role("main").get_by_role("combobox").press_sequentially("mot de pa")
    expect(page.get_by_role("listbox")).to_be_visible()
    page.keyboard.press("ArrowDown")
    found = violations(page)
    assert not found, f"axe, suggestions ouvertes :\n{report(found)}"


def test_no_axe_violation_after_voting_with_javascript(page: Page) -> None:
    page.goto("/articles/modifier-son-mot-de-passe")
    page.get_by_role("button", name="Non").click()
    expect(page.get_by_role("status").filter(has_text="Merci")).to_be_visible()
    found = violations(page)
    assert not found, f"axe, après le vote :\n{report(found)}"


# axe ignores text made only of punctuation, such as the "#" after a heading: measured here.
EFFECTIVE_COLOUR = """el => {
  let opacity = 1;
  for (let node = el; node; node = node.parentElement) opacity *= +getComputedStyle(node).opacity;
  const [r, g, b] = getComputedStyle(el).color.match(/\\d+/g).map(Number);
  return [r, g, b].map(c => Math.round(c * opacity + 255 * (1 - opacity)));
}"""


def luminance(rgb: list[int]) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = map(channel, rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_heading_links_are_readable(page: Page) -> None:
    page.goto("/articles/modifier-son-mot-de-passe")
    anchor = page.locator(".heading-anchor").first
    # A screen reader's list of headings reads each heading's text, not the link's label too.
    heading = page.locator(".article__body h2").first
    name = heading.inner_text()
    expect(page.get_by_role("heading", name=name, exact=True)).to_have_count(1)
    # The link's name begins with what the eye reads, "#" (RGAA 6.1, label in name).
    link = page.get_by_role("link", name=f"# Lien vers la section « {name} »", exact=True)
    expect(link).to_be_visible()
    assert anchor.evaluate("a => a.firstChild.textContent") == "#"
    colour = anchor.evaluate(EFFECTIVE_COLOUR)
    ratio = (1.05) / (luminance(colour) + 0.05)  # on the article's white background
    assert ratio >= 4.5, f"« # » en {colour} sur blanc : contraste {ratio:.2f}:1"


def test_article_tables_are_named_regions_and_breadcrumb_separators_are_silent(
    page: Page,
) -> None:
    page.goto("/articles/question-sur-l-abonnement")
    tables = page.locator(".article__body .table-wrap")
    expect(tables.first).to_have_attribute("tabindex", "0")  # to scroll it from the keyboard
    for wrap in tables.all():  # focusable, hence a region with a name
        expect(wrap).to_have_role("region")
        expect(wrap).to_have_accessible_name(re.compile(r"^Tableau"))
    crumbs = page.get_by_role("navigation", name="Fil d'Ariane")
    assert "›" not in crumbs.aria_snapshot() and "›" not in crumbs.inner_text()


def test_every_page_of_every_role_passes_axe(
    helpdesk: Server, visit: Callable[..., Page], axe: Callable[[Page], str]
) -> None:
    """The route table walked by each role (test_reflow's walk): axe on each page, at the
    width of a computer and of a phone."""
    paths = every_page(helpdesk)
    problems = []
    for role, login in ROLES.items():
        page = visit(helpdesk.url)
        if login:
            helpdesk.log_in(page, login)
        for size in ({"width": 1280, "height": 800}, PHONE):
            page.set_viewport_size(size)  # type: ignore[arg-type]
            for name, path in paths.items():
                response = page.goto(path)
                assert response is not None and response.status < 500, path
                found = axe(page)
                if found:
                    problems.append(f"{role}, {size['width']} px, {name} ({path}) :\n{found}")
    assert not problems, "\n".join(problems)
