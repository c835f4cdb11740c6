"""kb check: every content problem as path:line: message, all of them, exit status 1."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CATEGORIES, Site, article, write_tree

from kb.knowledge.build import check, renderer_for
from kb.knowledge.problems import Problem


def problems_of(tmp_path: Path, files: dict[str, str | bytes]) -> list[str]:
    root = write_tree(tmp_path / "content", {**CATEGORIES, **files})
    return messages(check(root)[1])


def warnings_of(tmp_path: Path, files: dict[str, str | bytes]) -> list[str]:
    root = write_tree(tmp_path / "content", {**CATEGORIES, **files})
    return messages(check(root)[1], warnings=True)


def messages(problems: list[Problem], warnings: bool = False) -> list[str]:
    root = next((p.path for p in problems), Path("."))
    while root.name and not (root / "abonnement").is_dir():
        root = root.parent
    return [
        f"{p.path.relative_to(root)}:{p.line}: {p.message}"
        for p in problems
        if p.warning == warnings
    ]


def test_valid_content_has_no_problem(tmp_path: Path) -> None:
    files = {"abonnement/a.md": article("A", summary="S", keywords="[a, b]")}
    assert problems_of(tmp_path, files) == []


def test_yaml_error_names_the_line_of_the_fault(tmp_path: Path) -> None:
    files = {"abonnement/a.md": "---\ntitle: A\nsummary: deux: points\n---\nTexte.\n"}
    assert problems_of(tmp_path, files) == [
        "abonnement/a.md:3: YAML invalide : « : » inattendu (mettez la valeur entre guillemets)"
    ]


@pytest.mark.parametrize(
    ("header", "line", "message"),
    [
        ("title: [\n", 2, "valeur manquante ou crochet non fermé"),
        ("title: 'x\n", 2, "guillemet ouvert ici et jamais fermé"),
        # The quote opened on line 3 runs on to the end: line 3 is where it must be closed.
        (
            "title: x\nsummary: 'un résumé\nkeywords: [a]\norder: 2\n",
            3,
            "guillemet ouvert ici et jamais fermé",
        ),
        ("title: x\n\tsummary: y\n", 3, "tabulation interdite : indentez avec des espaces"),
        ("title: x\nkeywords: [a, b\n", 3, "crochet « [ » non fermé"),
        ("title: @x\n", 2, "caractère interdit en début de valeur : guillemets"),
        (
            "title: x\nupdated: 2026-02-30\n",
            3,
            "date impossible « 2026-02-30 » : ce jour ou cette heure n'existe pas",
        ),
        # A value its explicit tag cannot make: PyYAML's int("x") and bool lookup.
        ("title: !!int x\n", 2, "« x » ne peut pas être lu comme « int »"),
        (
            "title: x\ndraft: !!bool peut-être\n",
            3,
            "« peut-être » ne peut pas être lu comme « bool »",
        ),
    ],
)
def test_yaml_faults_are_explained_in_french(
    tmp_path: Path, header: str, line: int, message: str
) -> None:
    files = {"abonnement/a.md": f"---\n{header}---\nTexte.\n"}
    assert problems_of(tmp_path, files) == [f"abonnement/a.md:{line}: YAML invalide : {message}"]


def test_a_key_written_twice_in_an_article_header_is_named_at_its_second_line(
    tmp_path: Path,
) -> None:
    files = {"abonnement/a.md": "---\ntitle: A\nsummary: S\ntitle: B\n---\nTexte.\n"}
    assert problems_of(tmp_path, files) == ["abonnement/a.md:4: clé « title » en double (ligne 2)"]


def test_missing_title(tmp_path: Path) -> None:
    files = {"abonnement/a.md": "---\nsummary: Un résumé\n---\nTexte.\n"}
    assert problems_of(tmp_path, files) == [
        "abonnement/a.md:1: « title » manquant : chaque fichier doit avoir « title: … »"
    ]


def test_unknown_key_names_the_closest_known_key(tmp_path: Path) -> None:
    files = {"abonnement/a.md": "---\ntitle: A\nkeywrods: [x]\n---\nTexte.\n"}
    assert problems_of(tmp_path, files) == [
        "abonnement/a.md:3: clé inconnue « keywrods » : vouliez-vous dire « keywords » ?"
    ]


def test_wrong_types(tmp_path: Path) -> None:
    files = {
        "abonnement/a.md": (
            "---\ntitle: A\nfeatured: 4\norder: premier\ndraft: peut-être\n"
            "updated: hier\naliases: {a: b}\n---\nTexte.\n"
        )
    }
    assert problems_of(tmp_path, files) == [
        "abonnement/a.md:3: « featured » doit être un nombre entier de 1 à 3, pas 4",
        "abonnement/a.md:4: « order » doit être un nombre entier, pas « premier »",
        "abonnement/a.md:5: « draft » doit être true ou false, pas « peut-être »",
        "abonnement/a.md:6: « updated » doit être une date AAAA-MM-JJ, pas « hier »",
        "abonnement/a.md:7: « aliases » doit être une liste, pas une liste de clés",
    ]


def aged(root: Path, *names: str) -> None:
    """Gives the files modification times in this order, oldest first."""
    for n, name in enumerate(names):
        os.utime(root / name, (1_700_000_000 + n * 60, 1_700_000_000 + n * 60))


def test_slug_used_twice_is_blamed_on_the_newer_file(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "content",
        {
            **CATEGORIES,
            "utilisation/ancien.md": article("Ancien", slug="a"),
            "abonnement/a.md": article("Nouveau"),
        },
    )
    aged(root, "utilisation/ancien.md", "abonnement/a.md")
    assert messages(check(root)[1]) == [
        f"abonnement/a.md:1: adresse « a » déjà utilisée par "
        f"{root / 'utilisation/ancien.md'} (slug), plus ancien : choisissez-en une autre"
    ]
    aged(root, "abonnement/a.md", "utilisation/ancien.md")
    assert messages(check(root)[1]) == [
        f"utilisation/ancien.md:3: adresse « a » déjà utilisée par "
        f"{root / 'abonnement/a.md'} (slug), plus ancien : choisissez-en une autre"
    ]


def test_alias_used_twice_names_both_files(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "content",
        {
            **CATEGORIES,
            "abonnement/a.md": article("A", aliases="[ancien]"),
            "abonnement/b.md": article("B", aliases="[ancien]"),
        },
    )
    aged(root, "abonnement/a.md", "abonnement/b.md")
    assert messages(check(root)[1]) == [
        f"abonnement/b.md:3: ancienne adresse « ancien » déjà utilisée par "
        f"{root / 'abonnement/a.md'} (aliases), plus ancien : choisissez-en une autre"
    ]


def test_link_to_missing_article(tmp_path: Path) -> None:
    body = "Premier paragraphe.\n\nVoir [la page](../compte-utilisateur/mot-de-pass.md)."
    files = {
        "abonnement/a.md": article("A", body),
        "compte-utilisateur/mot-de-passe.md": article("Mot de passe"),
    }
    assert problems_of(tmp_path, files) == [
        "abonnement/a.md:6: lien vers un article introuvable "
        "« ../compte-utilisateur/mot-de-pass.md » : vouliez-vous dire « mot-de-passe.md » ?"
    ]


def test_unknown_related_slug(tmp_path: Path) -> None:
    files = {
        "abonnement/a.md": article("A", related="[renouveler-abonement]"),
        "abonnement/renouveler-abonnement.md": article("R"),
    }
    assert problems_of(tmp_path, files) == [
        "abonnement/a.md:3: article lié inconnu « renouveler-abonement » : "
        "vouliez-vous dire « renouveler-abonnement » ?"
    ]


def test_featured_rank_used_twice(tmp_path: Path) -> None:
    files = {
        "abonnement/a.md": article("A", featured=1),
        "abonnement/b.md": article("B", featured=1),
    }
    assert problems_of(tmp_path, files) == [
        f"abonnement/b.md:3: rang featured 1 déjà pris par {tmp_path / 'content/abonnement/a.md'}"
    ]


def test_empty_article(tmp_path: Path) -> None:
    files = {"abonnement/a.md": "---\ntitle: A\n---\n\n   \n"}
    assert problems_of(tmp_path, files) == [
        "abonnement/a.md:3: article vide : écrivez le texte de l'article sous l'en-tête"
    ]


def test_category_folder_without_category_file(tmp_path: Path) -> None:
    files = {"divers/a.md": article("A")}
    assert problems_of(tmp_path, files) == [
        "divers:1: dossier de catégorie sans _category.yml : "
        "créez-le avec title, order et description"
    ]


def test_file_not_utf8_names_the_line(tmp_path: Path) -> None:
    files = {"abonnement/a.md": b"---\ntitle: A\n---\nLigne\n" + "Été\n".encode("latin-1")}
    assert problems_of(tmp_path, files) == [
        "abonnement/a.md:5: le fichier n'est pas en UTF-8 (octet 0xc9) : enregistrez-le en UTF-8"
    ]


def test_unreadable_file(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "content", {**CATEGORIES, "abonnement/a.md": article("A")})
    (root / "abonnement/b.md").symlink_to(root / "abonnement/nulle-part.md")
    _, problems = check(root)
    assert [f"{p.path.name}:{p.line}: {p.message}" for p in problems if not p.warning] == [
        "b.md:1: fichier illisible : fichier introuvable (lien cassé ?)"
    ]


def test_an_article_file_linked_from_elsewhere_is_found_by_the_links_to_it(
    tmp_path: Path,
) -> None:
    """A file kept outside the content folder and linked into a category (`ln -s`): the links
    to it lead to that article, as they would to a plain file."""
    root = write_tree(
        tmp_path / "content", {**CATEGORIES, "abonnement/a.md": article("A", "Voir [B](b.md).")}
    )
    shared = write_tree(tmp_path / "partage", {"tarifs.md": article("B")})
    (root / "abonnement/b.md").symlink_to(shared / "tarifs.md")
    content, problems = check(root)
    assert [p for p in problems if not p.warning] == []
    rendered, _ = renderer_for(content).render(content.by_slug()["a"])
    assert 'href="/articles/b"' in rendered.html


def test_missing_front_matter_and_unclosed_front_matter(tmp_path: Path) -> None:
    files = {"abonnement/a.md": "# Titre\n\nTexte.\n", "abonnement/b.md": "---\ntitle: B\nTexte\n"}
    assert problems_of(tmp_path, files) == [
        "abonnement/a.md:1: en-tête manquant : le fichier doit commencer par « --- », "
        "puis « title: … », puis « --- »",
        "abonnement/b.md:1: en-tête non fermé : ajoutez une ligne « --- » après l'en-tête",
    ]


def test_every_problem_is_reported_in_one_run(tmp_path: Path) -> None:
    files = {
        "abonnement/a.md": "---\ntitel: A\n---\nTexte\n",
        "abonnement/b.md": "---\ntitle: B\nfeatured: 9\n---\n\n",
        "utilisation/c.md": article("C", "[x](inconnu.md)"),
    }
    assert len(problems_of(tmp_path, files)) == 5


def test_warnings_are_listed_apart_and_fail_only_with_strict(
    make_site: Callable[..., Site], cli: Callable[..., object]
) -> None:
    long_title = "Comment " + "très " * 20 + "long"
    site = make_site({"abonnement/a.md": article(long_title)}, built=False)
    result = cli("check", "--content", site.content)
    assert result.status == 0  # type: ignore[attr-defined]
    assert "3 avertissement(s) :" in result.out  # type: ignore[attr-defined]
    assert "article sans « summary » (résumé)" in result.out  # type: ignore[attr-defined]
    assert "article sans « keywords » (mots-clés)" in result.out  # type: ignore[attr-defined]
    assert "titre long (" in result.out  # type: ignore[attr-defined]
    strict = cli("check", "--strict", "--content", site.content)
    assert strict.status == 1  # type: ignore[attr-defined]


def test_check_command_prints_path_line_message_and_exits_1(
    make_site: Callable[..., Site], cli: Callable[..., object]
) -> None:
    site = make_site({"abonnement/a.md": "---\ntitle: A\nfeatured: 0\n---\nTexte\n"}, built=False)
    result = cli("check", "--content", site.content)
    assert result.status == 1  # type: ignore[attr-defined]
    assert "abonnement/a.md:3: « featured » doit être un nombre entier de 1 à 3, pas 0" in (
        result.out  # type: ignore[attr-defined]
    )
    assert "Traceback" not in result.out + result.err  # type: ignore[attr-defined]


def test_keywords_as_comma_separated_string(tmp_path: Path) -> None:
    from kb.knowledge.content import load

    root = write_tree(
        tmp_path / "content", {**CATEGORIES, "abonnement/a.md": article("A", keywords="un, deux")}
    )
    assert load(root).articles[0].keywords == ("un", "deux")


def test_synonyms_file_errors(tmp_path: Path) -> None:
    files = {"abonnement/a.md": article("A"), "synonymes.yml": "- [seul]\n- [a, b]\n- {x: y}\n"}
    assert problems_of(tmp_path, files) == [
        "synonymes.yml:1: un groupe de synonymes compte au moins deux mots",
        "synonymes.yml:3: groupe attendu : « - [mot, synonyme, …] »",
    ]
