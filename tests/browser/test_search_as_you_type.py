"""With JavaScript: instant results under the field, opened with the keyboard; votes and
heading links on the article without leaving it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, Route, expect

pytestmark = pytest.mark.browser

FIELD = "Rechercher dans l'assistance"
LIST = "Suggestions d'articles"


def search_field(page: Page) -> Locator:
    return page.get_by_role("main").get_by_role("combobox", name=FIELD)


def suggestions(page: Page) -> Locator:
    return page.get_by_role("listbox", name=LIST)


def settled(page: Page) -> None:
    """Lets the page run what is already queued (a response being handled) before asserting."""
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => setTimeout(done)))")


def test_typing_shows_instant_results_and_the_keyboard_opens_one(page: Page) -> None:
    page.goto("/")
    field = search_field(page)
    field.press_sequentially("mot de pa")

    listbox = suggestions(page)
    expect(listbox).to_be_visible()
    expect(field).to_have_attribute("aria-expanded", "true")
    options = listbox.get_by_role("option")
    expect(options.last).to_have_text("Voir tous les résultats pour « mot de pa »")
    expect(options.filter(has_text=re.compile("mot de passe", re.I)).first).to_be_visible()
    articles = options.count() - 1
    assert articles >= 1
    # Announced to screen readers by the live region, not only shown.
    expect(page.get_by_role("status").filter(has_text="suggestion")).to_have_text(
        f"{articles} suggestion{'s' if articles > 1 else ''} : "
        "flèches haut et bas pour les parcourir."
    )

    field.press("ArrowDown")
    first = options.first
    expect(first).to_have_attribute("aria-selected", "true")
    expect(field).to_have_attribute("aria-activedescendant", first.get_attribute("id") or "?")
    expect(field).to_be_focused()
    title = first.inner_text()

    field.press("Enter")
    expect(page).to_have_url(re.compile(r"/articles/[\w-]+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(title)


def test_arrows_wrap_around_and_escape_closes_the_list(page: Page) -> None:
    page.goto("/")
    field = search_field(page)
    field.press_sequentially("abonnement")
    listbox = suggestions(page)
    expect(listbox).to_be_visible()
    options = listbox.get_by_role("option")

    field.press("ArrowUp")  # from the field, up goes to the last option: all the results
    expect(options.last).to_have_attribute("aria-selected", "true")
    field.press("ArrowDown")
    expect(options.first).to_have_attribute("aria-selected", "true")
    expect(options.last).to_have_attribute("aria-selected", "false")

    field.press("Escape")
    expect(listbox).to_be_hidden()
    expect(field).to_have_attribute("aria-expanded", "false")
    expect(field).not_to_have_attribute("aria-activedescendant", re.compile(".*"))
    expect(field).to_be_focused()
    expect(field).to_have_value("abonnement")  # Escape closes the list, keeps what was typed

    field.press("ArrowDown")  # and the list comes back from the keyboard
    expect(listbox).to_be_visible()
    expect(options.first).to_have_attribute("aria-selected", "true")

    field.press("ArrowUp")
    expect(options.last).to_have_attribute("aria-selected", "true")
    field.press("Enter")  # the last option is the full search
    expect(page).to_have_url(re.compile(r"/recherche\?q=abonnement$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Résultats de recherche")


def test_the_banner_field_suggests_too_and_a_click_opens_an_article(page: Page) -> None:
    page.goto("/categories/abonnement")
    field = page.get_by_role("banner").get_by_role("combobox", name=FIELD)
    field.press_sequentially("factur")
    option = suggestions(page).get_by_role("option").first
    expect(option).to_be_visible()
    title = option.inner_text()
    option.click()
    expect(page).to_have_url(re.compile(r"/articles/[\w-]+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(title)


def test_a_query_that_finds_nothing_says_so_and_enter_searches(page: Page) -> None:
    page.goto("/")
    field = search_field(page)
    field.press_sequentially("xylophone")

    options = suggestions(page).get_by_role("option")
    expect(options).to_have_count(1)
    expect(options).to_have_text("Voir tous les résultats pour « xylophone »")
    expect(page.get_by_role("status").filter(has_text="Aucune suggestion")).to_have_text(
        "Aucune suggestion. Appuyez sur Entrée pour lancer la recherche."
    )

    field.press("Enter")  # nothing selected: the form is submitted as typed
    expect(page).to_have_url(re.compile(r"/recherche\?q=xylophone$"))
    expect(page.get_by_role("heading", name="Aucun article ne correspond")).to_be_visible()
    expect(page.get_by_role("link", name="Créer un ticket d'aide")).to_be_visible()


def test_typing_fast_shows_the_results_of_the_last_query(page: Page) -> None:
    page.goto("/")
    field = search_field(page)
    field.press_sequentially("mot de passe oublié")
    expect(suggestions(page).get_by_role("option").last).to_have_text(
        "Voir tous les résultats pour « mot de passe oublié »"
    )


def test_an_outdated_answer_does_not_overwrite_newer_results(page: Page) -> None:
    held: list[Route] = []

    def hold_the_first_query(route: Route) -> None:
        if "q=abon" in route.request.url:
            held.append(route)  # answered later, after the newer query's results are shown
        else:
            route.continue_()

    page.route("**/api/suggest?*", hold_the_first_query)
    page.goto("/")
    field = search_field(page)
    with page.expect_request("**/api/suggest?q=abon") as outdated:
        field.press_sequentially("abon")
    field.fill("mot de passe")
    options = suggestions(page).get_by_role("option")
    expect(options.last).to_have_text("Voir tous les résultats pour « mot de passe »")
    shown = options.all_inner_texts()

    assert [route.request for route in held] == [outdated.value]
    held[0].fulfill(
        json={
            "query": "abon",
            "suggestions": [
                {"slug": "x", "title": "Réponse périmée", "url": "/articles/x", "category": "x"}
            ],
        }
    )
    settled(page)
    assert options.all_inner_texts() == shown
    expect(suggestions(page)).not_to_contain_text("Réponse périmée")


def test_voting_and_heading_links_stay_on_the_article(page: Page) -> None:
    page.goto("/articles/modifier-son-mot-de-passe")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    url = page.url
    page.evaluate("window.sameDocument = true")

    page.get_by_role("button", name="Oui").click()
    expect(page.get_by_role("status").filter(has_text="Merci")).to_have_text(
        "Merci pour votre avis !"
    )
    expect(page.get_by_role("group", name="Cet article vous a-t-il été utile ?")).to_be_hidden()
    assert page.url == url
    assert page.evaluate("window.sameDocument") is True  # no page load happened

    anchor = page.get_by_role("link", name="Lien vers la section « Étapes »")
    expect(anchor).to_have_attribute("href", "#etapes")
    anchor.click()
    expect(page).to_have_url(url + "#etapes")
    assert page.evaluate("document.querySelector(':target').textContent").startswith("Étapes")
    expect(page.get_by_role("status").filter(has_text="copié")).to_have_text(
        "Lien vers la section copié."
    )
    assert page.evaluate("navigator.clipboard.readText()") == url + "#etapes"
