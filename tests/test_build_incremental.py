"""Incremental builds: what an edit changes shows, whatever else it affects, and what the
previous build kept of a file is never used once the file has changed."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Site, article

from kb.knowledge.build import ContentErrors, build
from kb.knowledge.search import SearchIndex
from kb.knowledge.search.indexer import STATE, current_generation

QUERIES = ("facture", "devis", "mot de passe", "tarifs", "connexion", "export", "abonnement")


def _seen(index: Path) -> dict[str, Any]:
    """What readers get from an index: answers to queries, article pages, listings."""
    snapshot = SearchIndex(index).snapshot()
    pages = {}
    for listed in snapshot.listing:
        page = snapshot.article(listed["slug"], drafts=True)
        pages[listed["slug"]] = page and (page.title, page.category, page.html, page.related)
    answers = {q: snapshot.search(q, prefix=True, per_page=50).as_json() for q in QUERIES}
    for answer in answers.values():
        for result in answer["results"]:
            # Whoosh counts the replaced versions in its statistics until segments merge: the
            # scores differ a little from a full build's, the answers do not.
            del result["score"]
    return {
        "queries": answers,
        "pages": pages,
        "listing": sorted(snapshot.listing, key=lambda a: a["slug"]),
        "aliases": snapshot.aliases,
    }


def assert_as_if_built_anew(site: Site, tmp_path: Path) -> None:
    """The incremental index answers exactly as a full build of the same content."""
    fresh = tmp_path / "fresh-index"
    shutil.rmtree(fresh, ignore_errors=True)
    report = build(site.content, fresh, full=True)
    assert _seen(site.index) == _seen(fresh)
    assert site.build().changed == 0  # and nothing is left to do
    assert report.warnings == site.build().warnings


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    return make_site(
        {
            "abonnement/a.md": article("Payer une facture", "Voir [Tarifs](b.md#tarifs)."),
            "abonnement/b.md": article("Tarifs", "## Tarifs\n\nLe devis et les prix."),
            "compte-utilisateur/c.md": article("Mot de passe", "La connexion.", related="[a]"),
            "utilisation/d.md": article("Export", "Exporter les données.", summary="Exporter"),
        }
    )


def test_an_edit_shows_and_nothing_else_is_rendered(site: Site, tmp_path: Path) -> None:
    site.write({"utilisation/d.md": article("Export", "Exporter les factures en CSV.")})
    report = site.build()
    assert (report.articles, report.changed) == (4, 1)
    assert "d" in site.slugs("factures")
    assert_as_if_built_anew(site, tmp_path)


def test_a_renamed_file_is_followed_by_the_links_to_it(site: Site, tmp_path: Path) -> None:
    (site.content / "abonnement/b.md").rename(site.content / "abonnement/bee.md")
    with pytest.raises(ContentErrors) as raised:
        site.build()  # a.md did not change, but its link now leads nowhere
    assert str(raised.value.problems[0]).endswith(
        "a.md:4: lien vers un article introuvable « b.md#tarifs » : vouliez-vous dire « bee.md » ?"
    )
    site.write({"abonnement/a.md": article("Payer une facture", "Voir [Tarifs](bee.md#tarifs).")})
    site.build()
    page = site.snapshot().article("a")
    assert page is not None and 'href="/articles/bee#tarifs"' in page.html
    assert site.snapshot().article("b") is None
    assert_as_if_built_anew(site, tmp_path)


def test_a_new_slug_rerenders_the_links_and_related_that_name_it(
    site: Site, tmp_path: Path
) -> None:
    site.write({"abonnement/a.md": article("Payer une facture", "Voir [Tarifs](b.md#tarifs).")})
    site.write({"abonnement/a.md": article("Payer une facture", "Voir [Tarifs](b.md).")})
    site.build()
    site.write({"abonnement/b.md": article("Tarifs", "Le devis.", slug="prix", aliases="[b]")})
    report = site.build()
    assert report.changed == 2  # b itself, and a that links to its file
    page = site.snapshot().article("a")
    assert page is not None and 'href="/articles/prix"' in page.html
    site.write({"abonnement/a.md": article("Payer", "Texte.", slug="payer", aliases="[a]")})
    site.build()
    related = site.snapshot().article("c")
    assert related is not None and related.related == ["payer"]  # c.md names it by its old slug
    assert_as_if_built_anew(site, tmp_path)


def test_a_deleted_article_linked_from_another_is_an_error_there(site: Site) -> None:
    live = current_generation(site.index)
    (site.content / "abonnement/b.md").unlink()
    with pytest.raises(ContentErrors) as raised:
        site.build()
    assert "a.md:4: lien vers un article introuvable « b.md#tarifs »" in str(
        raised.value.problems[0]
    )
    assert current_generation(site.index) == live
    assert "b" in site.slugs("devis")


def test_a_deleted_article_leaves_the_index(site: Site, tmp_path: Path) -> None:
    (site.content / "utilisation/d.md").unlink()
    assert site.build().removed == 1
    assert site.slugs("export") == []
    assert_as_if_built_anew(site, tmp_path)


def test_an_article_moved_to_another_category_is_listed_there(site: Site, tmp_path: Path) -> None:
    (site.content / "utilisation/d.md").rename(site.content / "abonnement/d.md")
    site.build()
    snapshot = site.snapshot()
    page = snapshot.article("d")
    assert page is not None and page.category == "abonnement"
    assert [a["slug"] for a in snapshot.articles_in("utilisation")] == []
    assert "d" in [a["slug"] for a in snapshot.articles_in("abonnement")]
    assert_as_if_built_anew(site, tmp_path)


def test_an_edit_that_breaks_a_link_in_an_unchanged_article_is_reported(site: Site) -> None:
    live = current_generation(site.index)
    site.write({"abonnement/b.md": article("Tarifs", "## Prix\n\nLe devis et les prix.")})
    with pytest.raises(ContentErrors) as raised:
        site.build()
    assert [str(p).split("/")[-1] for p in raised.value.problems] == [
        "a.md:4: section « #tarifs » introuvable dans « Tarifs » (sections : #prix)"
    ]
    site.write({"abonnement/b.md": article("Tarifs", "## Tarifs\n\nLe devis.", draft="true")})
    with pytest.raises(ContentErrors) as raised:
        site.build()
    assert "a.md:4: lien vers un brouillon « b.md#tarifs »" in str(raised.value.problems[0])
    assert current_generation(site.index) == live


def test_warnings_of_unchanged_articles_are_still_reported(site: Site, tmp_path: Path) -> None:
    site.write({"abonnement/a.md": article("Payer une facture", "Voir [Les prix](b.md).")})
    first = [str(p).split("/")[-1] for p in site.build().warnings]
    site.write({"utilisation/d.md": article("Export", "Les factures.", summary="Exporter")})
    again = [str(p).split("/")[-1] for p in site.build().warnings]
    assert again == first
    assert any(w.startswith("a.md:4: lien « Les prix » vers « Tarifs »") for w in again)
    assert_as_if_built_anew(site, tmp_path)


def test_a_file_changed_behind_its_times_is_read_again(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Files are trusted from their stat as soon as they were written (no racy window), so
    # only the stat tells: a rewrite of the same size with its mtime put back must show.
    monkeypatch.setattr("kb.knowledge.tree.RACY_NS", 0)
    site.build(full=True)
    path = site.content / "utilisation/d.md"
    before = path.stat()
    path.write_text(path.read_text().replace("Export", "Devise"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
    assert site.build().changed == 1
    assert site.slugs("devise") == ["d"]
    assert_as_if_built_anew(site, tmp_path)


def test_a_damaged_state_means_everything_is_built_again(site: Site, tmp_path: Path) -> None:
    generation = current_generation(site.index)
    assert generation is not None
    state = generation / STATE
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0xFF
    state.write_bytes(bytes(data))
    assert site.build().changed == 4
    assert_as_if_built_anew(site, tmp_path)


def test_a_release_switched_by_a_symbolic_link_renders_nothing_again(
    site: Site, tmp_path: Path
) -> None:
    # docs/operations.md: each release is a new checkout, `content` a link switched to it.
    releases = tmp_path / "releases"
    shutil.copytree(site.content, releases / "one")
    live = tmp_path / "live"
    live.symlink_to(releases / "one")
    index = tmp_path / "live-index"
    build(live, index)
    shutil.copytree(releases / "one", releases / "two")
    (releases / "two/utilisation/d.md").write_text(article("Export", "Les devises."))
    live.unlink()
    live.symlink_to(releases / "two")
    assert build(live, index).changed == 1
    assert [h.slug for h in SearchIndex(index).snapshot().search("devises").hits] == ["d"]
