"""Keyboard only: the skip link first, focus always visible, nothing lost after a vote."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from conftest import PASSWORD
from playwright.sync_api import Page, expect

from kb.helpdesk import accounts, posting
from kb.helpdesk.attachments import ReceivedForm

from .conftest import Server

pytestmark = pytest.mark.browser

MAX_TABS = 80

# Where the focus is, as a sighted keyboard user sees it: the outline, and whether it is on screen.
FOCUS_STYLE = """() => {
  const el = document.activeElement, style = getComputedStyle(el), box = el.getBoundingClientRect();
  return {
    tag: el.tagName.toLowerCase(), text: (el.textContent || el.value || "").trim().slice(0, 60),
    outlineStyle: style.outlineStyle, outlineWidth: style.outlineWidth, boxShadow: style.boxShadow,
    inViewport: box.bottom > 0 && box.top < innerHeight && box.width > 0 && box.height > 0,
    atStart: el === document.body,
  };
}"""


def test_the_skip_link_comes_first_and_moves_focus_to_the_content(page: Page) -> None:
    page.goto("/articles/modifier-son-mot-de-passe")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Aller au contenu")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()  # hidden off screen until focused
    focus = page.evaluate(FOCUS_STYLE)
    assert focus["outlineStyle"] != "none" and focus["outlineWidth"] != "0px", focus

    page.keyboard.press("Enter")
    main = page.get_by_role("main")
    expect(main).to_be_focused()
    expect(page).to_have_url(re.compile("#contenu$"))

    page.keyboard.press("Tab")  # the next stop is inside the content, not back in the banner
    expect(main.get_by_role("link", name="Assistance", exact=True)).to_be_focused()
    focus = page.evaluate(FOCUS_STYLE)
    assert focus["outlineStyle"] != "none" and focus["outlineWidth"] != "0px", focus


def tab_through(page: Page, path: str, most: int = MAX_TABS) -> list[dict[str, object]]:
    """Every stop of the page's Tab order until it comes back to the start: no trap, each
    stop's focus drawn and on screen."""
    page.goto(path)
    stops: list[dict[str, object]] = []
    for _ in range(most):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS_STYLE)
        if focus["atStart"] or (stops and focus == stops[0]):
            break
        stops.append(focus)
    else:
        pytest.fail(f"plus de {most} arrêts de tabulation sur {path}")
    assert len(stops) >= 5, stops
    invisible = [s for s in stops if s["outlineStyle"] == "none" or s["outlineWidth"] == "0px"]
    assert not invisible, f"focus invisible sur {path} : {invisible}"
    hidden = [s for s in stops if not s["inViewport"]]
    assert not hidden, f"élément focalisé hors de l'écran sur {path} : {hidden}"
    return stops


@pytest.mark.parametrize(
    "path", ["/", "/recherche?q=abonnement", "/articles/modifier-son-mot-de-passe", "/connexion"]
)
def test_every_stop_of_the_tab_order_shows_where_the_focus_is(page: Page, path: str) -> None:
    tab_through(page, path)


def test_the_establishments_and_the_support_pages_have_no_keyboard_trap(
    helpdesk: Server, visit: Callable[..., Page]
) -> None:
    marie = helpdesk.establishment()
    helpdesk.agent()
    services = helpdesk.app.state.services
    admin, _ = accounts.save(
        services.engine, role="admin", login="ada@cpro.fr", establishment="", first_name="Ada",
        last_name="Admin", email="ada@cpro.fr",
    )  # fmt: skip
    accounts.set_password(services.engine, admin, PASSWORD)
    form = ReceivedForm({"categorie": "abonnement", "sujet": "Facture", "message": "Où ?"})
    reference, _ = posting.create(
        services.engine, services.store, marie, form, {"abonnement": "Abonnement"},
        delay=services.answer_delay, limit=1024**3,
    )  # fmt: skip
    for login, paths in (
        (
            "0750654D",
            ["/tickets", "/tickets/nouveau", f"/tickets/{reference}", "/espace-personnel"],
        ),
        (
            "sam@cpro.fr",
            ["/support", f"/support/tickets/{reference}", "/support/tickets/nouveau", "/rapport"],
        ),
        ("ada@cpro.fr", ["/admin"]),
    ):
        page = visit(helpdesk.url)
        helpdesk.log_in(page, login)
        for path in paths:
            tab_through(page, path, most=200)


def test_voting_from_the_keyboard_keeps_the_focus_on_the_answer(page: Page) -> None:
    page.goto("/articles/modifier-son-mot-de-passe")
    yes = page.get_by_role("button", name="Oui")
    yes.focus()
    page.keyboard.press("Enter")
    thanks = page.get_by_role("status").filter(has_text="Merci")
    expect(thanks).to_have_text("Merci pour votre avis !")
    expect(yes).to_be_hidden()
    # The button that had the focus is gone: the focus goes to the thanks, not to the page's top.
    expect(thanks).to_be_focused()
    page.keyboard.press("Tab")  # and goes on from there
    expect(
        page.get_by_role("region", name="Articles liés").get_by_role("link").first
    ).to_be_focused()
