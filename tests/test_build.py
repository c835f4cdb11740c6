"""Builds: generations switched only when complete, incremental by content hash, --full."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT, Site, article

from kb.knowledge.build import ContentErrors, is_stale
from kb.knowledge.search.indexer import current_generation


def test_second_build_reindexes_only_changed_articles(make_site: Callable[..., Site]) -> None:
    site = make_site({"abonnement/a.md": article("A"), "abonnement/b.md": article("B")})
    assert site.build().changed == 0
    site.write({"abonnement/b.md": article("B", "Nouveau texte sur la facturation.")})
    report = site.build()
    assert (report.articles, report.changed) == (2, 1)
    assert site.slugs("facturation") == ["b"]
    assert site.build(full=True).changed == 2


def test_removed_article_leaves_the_index(make_site: Callable[..., Site]) -> None:
    site = make_site({"abonnement/a.md": article("A", "facture"), "abonnement/b.md": article("B")})
    (site.content / "abonnement/a.md").unlink()
    report = site.build()
    assert report.removed == 1
    assert site.slugs("facture") == []
    assert site.snapshot().article("a") is None


def test_renaming_a_slug_rerenders_the_articles_that_link_to_it(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(
        {"abonnement/a.md": article("A", "[B](b.md)"), "abonnement/b.md": article("B")}
    )
    site.write({"abonnement/b.md": article("B", slug="bee")})
    site.build()
    assert '<a href="/articles/bee">B</a>' in site.snapshot().article("a").html  # type: ignore[union-attr]


def test_failed_build_leaves_the_previous_index_serving(make_site: Callable[..., Site]) -> None:
    site = make_site({"abonnement/a.md": article("A", "facture")})
    live = current_generation(site.index)
    site.write({"abonnement/b.md": "---\ntitle: [\n---\nx\n"})
    with pytest.raises(ContentErrors) as raised:
        site.build()
    assert "b.md:2: YAML invalide" in str(raised.value.problems[0])
    assert current_generation(site.index) == live
    assert site.slugs("facture") == ["a"]


def test_interrupted_build_leaves_the_previous_index_whole(
    make_site: Callable[..., Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site({"abonnement/a.md": article("A", "facture")})
    live = current_generation(site.index)
    site.write({"abonnement/b.md": article("B", "facture encore")})

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("whoosh.writing.SegmentWriter.commit", crash)
    with pytest.raises(KeyboardInterrupt):
        site.build()
    monkeypatch.undo()
    assert current_generation(site.index) == live
    assert site.slugs("facture") == ["a"]
    assert [p.name for p in site.index.iterdir() if p.name.startswith("gen-")] == [live.name]  # type: ignore[union-attr]
    site.build()
    assert sorted(site.slugs("facture")) == ["a", "b"]


def test_an_open_snapshot_survives_a_rebuild(make_site: Callable[..., Site]) -> None:
    site = make_site({"abonnement/a.md": article("A", "facture")})
    old = site.snapshot()
    site.write({"abonnement/a.md": article("A", "devis")})
    site.build()
    assert [h.slug for h in old.search("facture").hits] == ["a"]
    assert site.slugs("devis") == ["a"]
    assert site.slugs("facture") == []


def test_stale_index_is_detected(make_site: Callable[..., Site]) -> None:
    site = make_site({"abonnement/a.md": article("A")})
    assert not is_stale(site.content, site.index)
    site.write({"abonnement/a.md": article("A", "autre")})
    assert is_stale(site.content, site.index)


def test_build_py_is_kb_build(tmp_path: Path, make_site: Callable[..., Site]) -> None:
    site = make_site({"abonnement/a.md": article("A")}, built=False)
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "build.py"),
            "--content",
            str(site.content),
            "--index",
            str(site.index),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Index construit : 1 articles, 3 catégories, 1 modifiés, ")
    assert result.stdout.rstrip().endswith(" s")


def test_build_with_errors_prints_them_all_and_exits_1(
    make_site: Callable[..., Site], cli: Callable[..., object]
) -> None:
    site = make_site(
        {
            "abonnement/a.md": "---\ntitel: A\n---\nx\n",
            "abonnement/b.md": article("B", "[x](y.md)"),
        },
        built=False,
    )
    result = cli("build", "--content", site.content, "--index", site.index)
    assert result.status == 1  # type: ignore[attr-defined]
    err = result.err  # type: ignore[attr-defined]
    assert "a.md:2: clé inconnue « titel » : vouliez-vous dire « title » ?" in err
    assert "rien n'a été construit" in err
    assert "Traceback" not in err
    assert current_generation(site.index) is None


def test_build_shows_progress_on_long_builds(
    make_site: Callable[..., Site], cli: Callable[..., object]
) -> None:
    files = {f"abonnement/a{n}.md": article(f"Article {n}") for n in range(250)}
    site = make_site(files, built=False)
    result = cli("build", "--content", site.content, "--index", site.index)
    assert "250/250 articles indexés" in result.err  # type: ignore[attr-defined]
    assert "Index construit : 250 articles" in result.out  # type: ignore[attr-defined]


def test_concurrent_builds_take_turns(make_site: Callable[..., Site]) -> None:
    import threading

    site = make_site({f"abonnement/a{n}.md": article(f"Article {n}", "facture") for n in range(30)})
    site.write({"abonnement/a0.md": article("Article 0", "devis")})
    errors: list[BaseException] = []

    def run() -> None:
        try:
            site.build()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert site.slugs("devis") == ["a0"]
    assert len(site.slugs("facture", per_page=50)) == 29


def _many(n: int) -> dict[str, str | bytes]:
    words = ("facture", "devis", "mot de passe", "connexion", "abonnement", "export")
    return {
        f"abonnement/a{i}.md": article(f"Article {i} {words[i % 6]}", f"Texte {words[i % 5]}.")
        for i in range(n)
    }


def test_a_large_build_shared_among_processes_finds_the_same(
    make_site: Callable[..., Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(_many(24))  # written in this process: below PARALLEL_FROM
    queries = ("facture", "devis", "mdp", "connexion abonnement", "expo")
    alone = {q: site.snapshot().search(q, prefix=True, per_page=50).as_json() for q in queries}
    monkeypatch.setattr("kb.knowledge.search.indexer.PARALLEL_FROM", 4)
    assert site.build(full=True).changed == 24
    for query in queries:
        assert site.snapshot().search(query, prefix=True, per_page=50).as_json() == alone[query]
    site.write({"abonnement/a3.md": article("Article 3", "Un devis rectifié.")})
    assert site.build().changed == 1
    assert "a3" in site.slugs("rectifié")
    # Its old version, still in its segment but deleted, is found no more.
    assert "a3" not in site.slugs("connexion", per_page=50)
    assert "a9" in site.slugs("connexion", per_page=50)


def test_problems_found_by_the_build_processes_are_all_reported(
    make_site: Callable[..., Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _many(12)
    site = make_site(files)
    live = current_generation(site.index)
    monkeypatch.setattr("kb.knowledge.search.indexer.PARALLEL_FROM", 4)
    site.write(
        {
            "abonnement/a1.md": article("Article 1", "[lien](nulle-part.md)"),
            "abonnement/a2.md": article("Article 2", "[lien](ailleurs.md)"),
        }
    )
    with pytest.raises(ContentErrors) as raised:
        site.build(full=True)
    messages = sorted(str(p) for p in raised.value.problems)
    assert len(messages) == 2
    assert "a1.md" in messages[0] and "nulle-part.md" in messages[0]
    assert "a2.md" in messages[1] and "ailleurs.md" in messages[1]
    assert current_generation(site.index) == live
    assert [p.name for p in site.index.iterdir() if p.name.startswith("gen-")] == [live.name]  # type: ignore[union-attr]
