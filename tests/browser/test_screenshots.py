"""Full-page screenshots, 1200 px wide, for people to look at (test-artifacts/, git-ignored)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

SHOTS = {
    "accueil": "/",
    "recherche": "/recherche?q=mot+de+passe",
    "recherche-sans-resultat": "/recherche?q=xylophone",
    "article": "/articles/modifier-son-mot-de-passe",
}


@pytest.mark.parametrize("path", SHOTS.values(), ids=SHOTS.keys())
def test_screenshot(page: Page, artifacts: Path, path: str, request: pytest.FixtureRequest) -> None:
    name = request.node.callspec.id
    page.goto(path)
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    target = artifacts / f"{name}.png"
    page.screenshot(path=target, full_page=True)
    assert target.stat().st_size > 10_000


def test_screenshot_of_the_suggestions(page: Page, artifacts: Path) -> None:
    page.goto("/")
    page.get_by_role("main").get_by_role("combobox").press_sequentially("mot de pa")
    expect(page.get_by_role("listbox")).to_be_visible()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("option").first).to_have_attribute("aria-selected", "true")
    page.screenshot(path=artifacts / "accueil-suggestions.png", full_page=True)
