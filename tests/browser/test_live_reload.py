"""kb serve --reload as an editor lives it: the open page follows the Markdown file on disk,
shows what is wrong with it, and recovers once it is fixed."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from kb.config import Settings
from kb.knowledge.build import build

from .conftest import SHIPPED_CONTENT, Server, serving

pytestmark = pytest.mark.browser

ARTICLE = "compte-utilisateur/modifier-son-mot-de-passe.md"
TITLE = "title: Modifier son mot de passe"
EVENTS = "/__apercu/evenements"
# Set in the page before the edit: a page that reloads loses it, one patched in place keeps it.
MARK = "() => { window.kbTestMark = true; }"
MARKED = "() => window.kbTestMark === true"


@pytest.fixture
def preview(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    """A server in preview mode over a copy of the shipped content, which the test edits."""
    content = tmp_path / "content"
    shutil.copytree(SHIPPED_CONTENT, content)
    build(content, tmp_path / "index")
    settings = Settings.from_env(
        {}, content_dir=content, index_dir=tmp_path / "index", data_dir=tmp_path / "var",
        live_reload=True, show_drafts=True,
    )  # fmt: skip
    with serving(lambda url: settings) as server:
        yield server, content


@contextlib.contextmanager
def listening(page: Page) -> Iterator[None]:
    """Ends when the page (opened or reloaded) listens to the server's changes again: an edit
    made before that would be missed."""
    with page.expect_response(lambda r: r.url.endswith(EVENTS) and r.status == 200):
        yield


def edit(page: Page, source: Path, text: str) -> None:
    """Writes the file as an editor would, and waits for the open page to reload by itself."""
    page.evaluate(MARK)
    with listening(page):
        source.write_text(text, encoding="utf-8")
    assert not page.evaluate(MARKED)  # a new page: reloaded by itself, not patched in place


# The preview server goes first: it stops after the page, whose event stream it would wait for.
def test_the_open_page_follows_the_file_shows_errors_and_recovers(
    preview: tuple[Server, Path], visit: Callable[..., Page]
) -> None:
    server, content = preview
    source = content / ARTICLE
    original = source.read_text(encoding="utf-8")
    page = visit(server.url)
    with listening(page):
        page.goto("/articles/modifier-son-mot-de-passe")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text("Modifier son mot de passe")

    edit(page, source, original.replace(TITLE, "title: Changer son mot de passe"))
    expect(heading).to_have_text("Changer son mot de passe")

    # Read down the page, as an editor checks the end of an article, then break the file: the
    # page reloads where it was, and the banner is in view there, not above it.
    page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
    edit(page, source, "---\ntitle: [\n---\nCassé.\n")
    banner = page.get_by_role("alert").filter(has_text="Aperçu : le contenu a des erreurs.")
    expect(banner).to_be_visible()
    assert page.evaluate("() => window.scrollY") > 0  # still down the page
    expect(banner).to_be_in_viewport()
    expect(banner).to_contain_text("La dernière version valide reste affichée.")
    expect(banner).to_contain_text("modifier-son-mot-de-passe.md:2: YAML invalide")
    expect(heading).to_have_text("Changer son mot de passe")  # the last good version

    fixed = original.replace(TITLE, "title: Changer le mot de passe du compte")
    edit(page, source, fixed + "\nUn paragraphe ajouté pendant l'aperçu.\n")
    expect(heading).to_have_text("Changer le mot de passe du compte")
    expect(banner).to_have_count(0)
    expect(page.get_by_role("main")).to_contain_text("Un paragraphe ajouté pendant l'aperçu.")
