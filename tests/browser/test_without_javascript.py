"""Without JavaScript: search, read, vote and share a section, all with plain HTML."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def test_search_open_a_result_vote_and_follow_a_heading_link(page_without_js: Page) -> None:
    page = page_without_js
    page.goto("/")
    field = page.get_by_role("main").get_by_role("searchbox", name="Rechercher dans l'assistance")
    expect(field).not_to_have_attribute("role", "combobox")  # kb.js really did not run
    field.fill("mot de passe")
    field.press("Enter")

    expect(page).to_have_url(re.compile(r"/recherche\?q=mot\+de\+passe$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Résultats de recherche")
    expect(page.get_by_role("status")).to_have_text(
        re.compile(r"^\d+ résultats? pour « mot de passe »$")
    )
    results = page.locator("ol.results").get_by_role("heading", level=2).get_by_role("link")
    expect(results.first).to_be_visible()
    href = results.first.get_attribute("href")
    title = results.first.inner_text()
    assert href and href.startswith("/articles/")

    results.first.click()
    expect(page).to_have_url(re.compile(re.escape(href) + "$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(title)

    page.get_by_role("button", name="Non").click()
    expect(page).to_have_url(re.compile(re.escape(href) + r"\?vote=non#vote$"))
    thanks = page.get_by_role("status").filter(has_text="Merci")
    expect(thanks).to_have_text(
        "Merci pour votre avis. Si la réponse ne vous aide pas, créez un ticket d'aide."
    )
    expect(thanks.get_by_role("link", name="créez un ticket d'aide")).to_be_visible()
    expect(page.get_by_role("button", name="Non")).to_have_count(0)

    anchor = page.locator(".article__body .heading-anchor").first
    fragment = anchor.get_attribute("href")
    assert fragment and fragment.startswith("#")
    anchor.click()
    expect(page).to_have_url(
        re.compile(re.escape(href) + r"\?vote=non" + re.escape(fragment) + "$")
    )
    target = page.locator(":target")
    expect(target).to_have_attribute("id", fragment[1:])
    expect(target).to_be_in_viewport()
