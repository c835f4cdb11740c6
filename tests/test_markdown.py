"""Rendering: CommonMark, tables, heading anchors from French headings, links, no raw HTML."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import CATEGORIES, Site, Web, article, write_tree

from kb.knowledge.build import check


def page_of(site: Site, slug: str) -> str:
    found = site.snapshot().article(slug)
    assert found is not None
    return found.html


def test_headings_get_stable_french_ids_and_a_link_to_copy(make_site: Callable[..., Site]) -> None:
    body = "## Étape 1 : se connecter\n\nTexte.\n\n## Étape 1 : se connecter\n\n### Où ça ?\n"
    site = make_site({"abonnement/a.md": article("A", body)})
    html = page_of(site, "a")
    assert '<h2 id="etape-1-se-connecter-2">' in html
    assert '<h3 id="ou-ca">' in html
    # The link follows the heading, outside it: the heading's name stays its text.
    assert (
        '<div class="section-heading"><h2 id="etape-1-se-connecter">Étape 1\u00a0: se connecter</h2>'
        '<a href="#etape-1-se-connecter" class="heading-anchor">#<span class="visually-hidden">'
        " Lien vers la section « Étape 1\u00a0: se connecter »</span></a></div>" in html
    )
    headings = site.snapshot().article("a").headings  # type: ignore[union-attr]
    assert headings[0] == (2, "Étape 1\u00a0: se connecter", "etape-1-se-connecter")


def test_raw_html_is_shown_as_text(make_site: Callable[..., Site]) -> None:
    body = 'Avant <script>alert("x")</script> après.\n\n<div onclick="x()">bloc</div>\n'
    site = make_site({"abonnement/a.md": article("A", body)})
    html = page_of(site, "a")
    assert "<script>" not in html and "<div onclick" not in html
    assert "&lt;script&gt;" in html


def test_tables_render_in_a_scrollable_box(make_site: Callable[..., Site]) -> None:
    body = "## Navigateurs\n\n| Navigateur | Recommandé |\n|---|---|\n| Firefox | Oui |\n"
    html = page_of(make_site({"abonnement/a.md": article("A", body)}), "a")
    # Focusable to scroll from the keyboard, hence a region with a name.
    assert (
        '<div class="table-wrap" tabindex="0" role="region" '
        'aria-label="Tableau de la section « Navigateurs »"><table>' in html
    )
    assert "<th>Navigateur</th>" in html and "<td>Firefox</td>" in html


def test_links_to_md_files_become_article_urls(make_site: Callable[..., Site]) -> None:
    files = {
        "abonnement/a.md": article(
            "A",
            "Voir [B](../utilisation/b.md#etapes), [C](c.md) et [le site](https://example.org/x.md).",
        ),
        "utilisation/b.md": article("B", "## Étapes\n\nTexte.", slug="nouvelle-adresse"),
        "abonnement/c.md": article("C"),
    }
    html = page_of(make_site(files), "a")
    assert '<a href="/articles/nouvelle-adresse#etapes">B</a>' in html
    assert '<a href="/articles/c">C</a>' in html
    assert '<a href="https://example.org/x.md">le site</a>' in html


def test_plain_text_for_search_leaves_out_markup(make_site: Callable[..., Site]) -> None:
    body = "## Titre\n\nUn **mot** et `code`.\n\n- point un\n- point deux\n"
    site = make_site({"abonnement/a.md": article("A", body)})
    text = site.snapshot().article("a").text  # type: ignore[union-attr]
    assert text == "Titre\nUn mot et code.\npoint un\npoint deux"


def test_french_spacing_is_made_non_breaking_by_the_renderer(
    make_site: Callable[..., Site],
) -> None:
    body = (
        "Pourquoi ? Parce que : « voilà » ; enfin !\n\n"
        "Le code `a ; b ?` et l'adresse https://example.org/a?b=1 restent tels quels, à 10:30."
    )
    html = page_of(make_site({"abonnement/a.md": article("A", body)}), "a")
    assert "Pourquoi\u202f? Parce que\u00a0: «\u00a0voilà\u00a0»\u202f; enfin\u202f!" in html
    assert "<code>a ; b ?</code>" in html
    assert "https://example.org/a?b=1" in html and "10:30" in html


def test_check_warns_where_no_space_was_typed(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "content",
        {
            **CATEGORIES,
            "abonnement/a.md": article(
                "Pourquoi?",
                "Bien.\n\nUne ligne.\nVoir: «ici» et `code?`, à 10:30, https://x.fr/?a.",
                summary="Tout va bien !",
            ),
        },
    )
    warnings = [f"{p.line}: {p.message}" for p in check(root)[1] if "espace" in p.message]
    assert [w.split(" : en français")[0] for w in warnings] == [
        "2: espace manquante dans « Pourquoi? »",
        "8: espace manquante dans « Voir: »",
        "8: espace manquante dans « «ici» »",
    ]


def test_titles_and_summaries_are_shown_with_french_spacing(
    make_web: Callable[..., Web],
) -> None:
    web = make_web({"abonnement/a.md": article("Que faire du devis ?", summary='"Ceci : cela."')})
    page = web.client.get("/articles/a").text
    assert '<h1 id="article-titre">Que faire du devis\u202f?' in page
    listing = web.client.get("/categories/abonnement").text
    assert "Que faire du devis\u202f?" in listing and "Ceci\u00a0: cela." in listing
    assert web.client.get("/api/search", params={"q": "devis"}).json()["results"][0]["title"] == (
        "Que faire du devis\u202f?"
    )
