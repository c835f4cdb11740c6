"""kb check as strict as a reader: what a reader would hit is caught, once, at its file and line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import CATEGORIES, Run, Site, article, write_tree

from kb.knowledge.build import build, check
from kb.knowledge.search import SearchIndex


def found(tmp_path: Path, files: dict[str, str | bytes]) -> tuple[list[str], list[str]]:
    """(errors, warnings) as `path:line: message`, paths from the content folder."""
    root = write_tree(tmp_path / "content", {**CATEGORIES, **files})
    _, problems = check(root)
    lines = [(p.warning, f"{p.path.relative_to(root)}:{p.line}: {p.message}") for p in problems]
    return [m for w, m in lines if not w], [m for w, m in lines if w]


def test_link_to_a_missing_section_names_the_closest_one(tmp_path: Path) -> None:
    files = {
        "abonnement/a.md": article("A", "Voir [B](b.md#etape).\n\nEt [ici](#sommaire)."),
        "abonnement/b.md": article("B", "## Étapes\n\nTexte.\n\n## Contact\n\nTexte."),
    }
    errors, _ = found(tmp_path, files)
    assert errors == [
        "abonnement/a.md:4: section « #etape » introuvable dans « B » : "
        "vouliez-vous dire « etapes » ?",
        "abonnement/a.md:6: section « #sommaire » introuvable dans cet article "
        "(cet article n'a pas d'intertitre)",
    ]


def test_links_to_existing_sections_pass(tmp_path: Path) -> None:
    files = {
        "abonnement/a.md": article(
            "A", "## Étapes\n\nVoir [B](b.md#contact) et [plus haut](#etapes)."
        ),
        "abonnement/b.md": article("B", "## Contact\n\nTexte."),
    }
    assert found(tmp_path, files)[0] == []


def test_published_article_linking_to_a_draft_is_an_error(tmp_path: Path) -> None:
    files = {
        "abonnement/a.md": article("A", "Voir [B](b.md)."),
        "abonnement/b.md": article("B", draft="true"),
        "abonnement/c.md": article("C", "Voir [B](b.md).", draft="true"),
    }
    assert found(tmp_path, files)[0] == [
        "abonnement/a.md:4: lien vers un brouillon « b.md » : les lecteurs auraient une page "
        "introuvable ; publiez-le d'abord ou retirez le lien"
    ]


def test_related_articles_are_known_published_and_named_by_their_slug(tmp_path: Path) -> None:
    files = {
        "abonnement/a.md": article("A", related="[b, c, ancien-d, e, inconnu]"),
        "abonnement/b.md": article("B", draft="true", related="[c, b-brouillon]"),
        "abonnement/b-brouillon.md": article("B brouillon", draft="true"),
        "abonnement/c.md": article("C"),
        "abonnement/d.md": article("D", aliases="[ancien-d]"),
        "abonnement/e.md": article("E"),
    }
    errors, warnings = found(tmp_path, files)
    assert errors == ["abonnement/a.md:3: article lié inconnu « inconnu »"]
    # A draft's own related drafts are its business: only the published article is told.
    assert [w for w in warnings if "article lié" in w] == [
        "abonnement/a.md:3: article lié « ancien-d » : c'est l'ancienne adresse de « d », "
        "écrivez « d »",
        "abonnement/a.md:3: article lié « b » encore en brouillon : il ne sera proposé aux "
        "lecteurs qu'une fois publié",
    ]


def test_template_text_of_kb_new(tmp_path: Path, cli: Callable[..., Run]) -> None:
    root = write_tree(tmp_path / "content", CATEGORIES)
    assert (
        cli("new", "Changer de catégorie", "--category", "abonnement", "--content", root).status
        == 0
    )
    path = root / "abonnement/changer-de-categorie.md"
    draft = cli("check", "--content", root)
    assert draft.status == 0  # a draft may still hold the template
    assert f"{path}:8: texte du modèle de kb new laissé tel quel" in draft.out
    path.write_text(path.read_text(encoding="utf-8").replace("draft: true\n", ""), "utf-8")
    published = cli("check", "--content", root)
    assert published.status == 1
    assert published.out.count("texte du modèle de kb new laissé tel quel") == 3
    assert (
        f"{path}:7: texte du modèle de kb new laissé tel quel « Répondez d'abord à la question "
        "en une ou deux phrases. » : remplacez-le par le vrai texte"
    ) in published.out


def test_long_article_without_headings_is_a_warning(tmp_path: Path) -> None:
    long_text = " ".join(["mot"] * 450)
    _, warnings = found(tmp_path, {"abonnement/a.md": article("A", long_text)})
    assert any(
        w.startswith("abonnement/a.md:4: article long (450 mots) sans intertitre") for w in warnings
    )
    _, warnings = found(tmp_path, {"abonnement/a.md": article("A", f"## Partie\n\n{long_text}")})
    assert not any("sans intertitre" in w for w in warnings)


def test_one_broken_file_gives_one_error(tmp_path: Path) -> None:
    files = {
        "abonnement/b.md": "---\ntitle: [\n---\nCassé.\n",
        "abonnement/a.md": article("A", "Voir [B](b.md).", related="[b]"),
        "utilisation/c.md": article("C", "Voir [B](../abonnement/b.md#x).", related="[b]"),
        "compte-utilisateur/d.md": "---\nsummary: sans titre\n---\nVoir [A](../abonnement/a.md).\n",
        "utilisation/e.md": article("E", "Voir [D](../compte-utilisateur/d.md)."),
    }
    assert found(tmp_path, files)[0] == [
        "abonnement/b.md:2: YAML invalide : valeur manquante ou crochet non fermé",
        "compte-utilisateur/d.md:1: « title » manquant : chaque fichier doit avoir « title: … »",
    ]


def test_broken_category_file_still_reads_its_articles(tmp_path: Path) -> None:
    files = {
        "abonnement/_category.yml": "title: [\n",
        "abonnement/b.md": article("B"),
        "utilisation/a.md": article("A", "Voir [B](../abonnement/b.md).", related="[b]"),
    }
    assert found(tmp_path, files)[0] == [
        "abonnement/_category.yml:1: YAML invalide : valeur manquante ou crochet non fermé"
    ]


def test_related_naming_an_old_slug_is_followed_and_named(make_site: Callable[..., Site]) -> None:
    files = {
        "abonnement/a.md": article("A", related="[ancienne]"),
        "abonnement/b.md": article("B", aliases="[ancienne]"),
    }
    site = make_site(files)
    _, problems = check(site.content)
    assert [str(p).split(": ", 1)[1] for p in problems if "lié" in p.message] == [
        "article lié « ancienne » : c'est l'ancienne adresse de « b », écrivez « b »"
    ]
    assert all(p.warning for p in problems)
    assert site.snapshot().article("a").related == ["b"]  # type: ignore[union-attr]


def test_strict_final_line_says_what_failed(tmp_path: Path, cli: Callable[..., Run]) -> None:
    root = write_tree(tmp_path / "content", {**CATEGORIES, "abonnement/a.md": article("A")})
    run = cli("check", "--strict", "--content", root)
    assert run.status == 1
    last = run.out.strip().splitlines()[-1]
    assert (
        last == "Échec (--strict) : 2 avertissement(s), aucune erreur (1 articles, 3 catégories)."
    )
    assert "Contenu valide" not in run.out
    plain = cli("check", "--content", root)
    assert plain.status == 0
    assert plain.out.strip().splitlines()[-1] == "Contenu valide : 1 articles, 3 catégories."
    (root / "abonnement/b.md").write_text("---\ntitle: [\n---\nx\n", encoding="utf-8")
    broken = cli("check", "--content", root)
    assert broken.out.strip().splitlines()[-1] == (
        "Échec : 1 erreur(s) et 2 avertissement(s) (1 articles, 3 catégories)."
    )


def test_incremental_build_sees_a_section_removed_from_an_unchanged_article(
    tmp_path: Path,
) -> None:
    root = write_tree(
        tmp_path / "content",
        {
            **CATEGORIES,
            "abonnement/a.md": article("A", "Voir [B](b.md#contact). Pourquoi?"),
            "abonnement/b.md": article("B", "## Contact\n\nTexte."),
        },
    )
    index = tmp_path / "index"
    first = build(root, index)
    assert any("Pourquoi?" in p.message for p in first.warnings)
    (root / "abonnement/b.md").write_text(article("B", "## Autre\n\nTexte."), encoding="utf-8")
    try:
        build(root, index)
    except Exception as exc:
        problems = [str(p) for p in exc.problems]  # type: ignore[attr-defined]
    else:
        raise AssertionError("the build should have refused the broken link")
    assert problems == [
        f"{root / 'abonnement/a.md'}:4: section « #contact » introuvable dans « B » (sections : #autre)"
    ]
    # The warning of the unchanged article is still reported by the next good build.
    (root / "abonnement/b.md").write_text(article("B", "## Contact\n\nTexte."), encoding="utf-8")
    assert any("Pourquoi?" in p.message for p in build(root, index).warnings)
    assert SearchIndex(index).snapshot().article("a") is not None
