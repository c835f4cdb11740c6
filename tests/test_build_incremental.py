"""Incremental builds: what an edit changes shows, whatever else it affects, and what the
previous build kept of a file is never used once the file has changed."""

from __future__ import annotations

import itertools
import marshal
import os
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import Site, article

from kb.knowledge import build_state, content
from kb.knowledge.build import ContentErrors, build
from kb.knowledge.build_state import FORMAT, PARTS, part_name
from kb.knowledge.changes import plan_changes
from kb.knowledge.search import SearchIndex
from kb.knowledge.search.indexer import STATE, current_generation
from kb.knowledge.tree import Tree

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


def _opened(raw: bytes) -> Any:
    return marshal.loads(raw[len(FORMAT) + 4 :])


def _sealed(data: object) -> bytes:
    payload = marshal.dumps(data)
    return FORMAT + zlib.crc32(payload).to_bytes(4, "big") + payload


def _live(site: Site) -> Path:
    generation = current_generation(site.index)
    assert generation is not None
    return generation


def _state(site: Site) -> dict[str, Any]:
    """The live generation's state: each file's, article's and rendering's record as bytes,
    and the inode of each part's file."""
    generation = _live(site)
    state: dict[str, Any] = {"files": {}, "articles": {}, "rendered": {}, "inodes": {}}
    for number in range(PARTS):
        path = generation / part_name(number)
        part = _opened(path.read_bytes())
        for kind in ("files", "articles", "rendered"):
            state[kind].update(part[kind])
        state["inodes"][number] = path.stat().st_ino
    return state


def test_one_edit_reads_renders_and_writes_only_that_article(
    make_site: Callable[..., Site], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("kb.knowledge.tree.RACY_NS", 0)  # files written a moment ago trusted
    site = make_site(
        {f"abonnement/a{i}.md": article(f"Article {i}", f"Texte {i}.") for i in range(30)}
    )
    site.build(full=True)
    before = _state(site)
    trees: list[Tree] = []
    parsed: list[str] = []
    encoded: list[object] = []
    real_load, real_dumps = content._load_article, marshal.dumps

    class SeenTree(Tree):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            trees.append(self)

    def load(path: Path, *args: Any) -> Any:
        parsed.append(path.name)
        return real_load(path, *args)

    def dumps(value: object) -> bytes:
        encoded.append(value)
        return real_dumps(value)

    monkeypatch.setattr("kb.knowledge.build.Tree", SeenTree)
    monkeypatch.setattr(content, "_load_article", load)
    monkeypatch.setattr(build_state, "marshal", SimpleNamespace(loads=marshal.loads, dumps=dumps))
    site.write({"abonnement/a7.md": article("Article 7", "Un texte revu.")})
    report = site.build()
    assert (report.articles, report.changed) == (30, 1)
    assert parsed == ["a7.md"]
    assert [t.read_again for t in trees] == [1]  # the others' hashes are the last build's
    after = _state(site)
    for kind in ("files", "articles", "rendered"):
        changed = {
            k
            for k in before[kind].keys() | after[kind].keys()
            if before[kind].get(k) != after[kind].get(k)
        }
        assert changed == {"a7" if kind == "rendered" else "abonnement/a7.md"}, kind
    # Encoded: a7's record, its rendering and outline, the parts that hold them and STATE;
    # the other parts are the last generation's files, linked.
    rewritten = {n for n, inode in after["inodes"].items() if inode != before["inodes"][n]}
    assert 1 <= len(rewritten) <= 3
    assert len(encoded) == 3 + len(rewritten) + 1
    assert_as_if_built_anew(site, tmp_path)


_EDITS = itertools.count()


def _written_again(site: Site, damage: Callable[[bytes], bytes], name: str = STATE) -> int:
    path = _live(site) / name
    path.write_bytes(damage(path.read_bytes()))
    edit = f"Exporter en CSV, {next(_EDITS)}."  # another text each time
    site.write({"utilisation/d.md": article("Export", edit, summary="Exporter")})
    return site.build().changed


def test_a_state_cut_short_of_another_format_or_missing_is_not_trusted(
    site: Site, tmp_path: Path
) -> None:
    assert _written_again(site, lambda raw: raw[: len(raw) // 2]) == 4  # a torn write
    assert _written_again(site, lambda raw: raw[: len(FORMAT) + 2]) == 4
    assert _written_again(site, lambda raw: b"kb-build-state 2\n" + raw[len(FORMAT) :]) == 4
    assert _written_again(site, lambda raw: b"") == 4
    for number in (0, PARTS // 2, PARTS - 1):
        assert _written_again(site, lambda raw: raw[:-1], part_name(number)) == 4
        assert _written_again(site, lambda raw: raw[:20] + raw[21:] + b"x", part_name(number)) == 4
    (_live(site) / STATE).unlink()
    site.write({"utilisation/d.md": article("Export", "Exporter en PDF.", summary="Exporter")})
    assert site.build().changed == 4
    (_live(site) / part_name(3)).unlink()
    site.write({"utilisation/d.md": article("Export", "Exporter en XML.", summary="Exporter")})
    assert site.build().changed == 4
    assert_as_if_built_anew(site, tmp_path)


def test_a_part_of_another_build_is_not_trusted(site: Site, tmp_path: Path) -> None:
    # Whole and sealed, but not the one STATE was written with (its CRC is another).
    def other(raw: bytes) -> bytes:
        part = _opened(raw)
        part["paths"]["utilisation/autre.md"] = "autre"
        return _sealed(part)

    assert _written_again(site, other, part_name(5)) == 4
    assert_as_if_built_anew(site, tmp_path)


def test_a_state_of_other_versions_or_with_a_bad_record_is_not_trusted(
    site: Site, tmp_path: Path
) -> None:
    def other_schema(raw: bytes) -> bytes:
        head = _opened(raw)
        head["versions"] = ("0", head["versions"][1])
        return _sealed(head)

    assert _written_again(site, other_schema) == 4
    # Not damage (the CRCs hold), but were it so: each article is read again, not trusted.
    generation = _live(site)
    head = _opened((generation / STATE).read_bytes())
    for number in range(PARTS):
        path = generation / part_name(number)
        part = _opened(path.read_bytes())
        part["articles"] = {name: b"\xff" for name in part["articles"]}
        raw = _sealed(part)
        path.unlink()  # linked from the previous generation: not written through
        path.write_bytes(raw)
        head["parts"][number] = int.from_bytes(raw[len(FORMAT) : len(FORMAT) + 4], "big")
    assert _written_again(site, lambda raw: _sealed(head)) == 1
    assert_as_if_built_anew(site, tmp_path)


def test_a_file_changed_while_the_build_renders_fails_it(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The build keeps articles without their bodies and reads each again to render it.
    live = current_generation(site.index)
    real_plan = plan_changes

    def plan_then_edit(*args: Any) -> Any:
        plan = real_plan(*args)
        site.write({"utilisation/d.md": article("Export", "Réécrit entre-temps.")})
        return plan

    monkeypatch.setattr("kb.knowledge.build.plan_changes", plan_then_edit)
    site.write({"utilisation/d.md": article("Export", "Exporter en CSV.", summary="Exporter")})
    with pytest.raises(ContentErrors) as raised:
        site.build()
    assert [str(p).split("/")[-1] for p in raised.value.problems] == [
        "d.md:1: fichier modifié pendant la construction : relancez-la"
    ]
    assert current_generation(site.index) == live
    monkeypatch.undo()
    assert site.build().changed == 1
    assert "d" in site.slugs("réécrit")
