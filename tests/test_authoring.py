"""kb new --slug and kb mv: an article renamed or moved keeps every link and old address alive."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from conftest import CATEGORIES, ROOT, Run, article, write_tree

from kb.knowledge.build import build, check
from kb.knowledge.search import SearchIndex


def test_new_with_a_slug(tmp_path: Path, cli: Callable[..., Run]) -> None:
    root = write_tree(tmp_path / "content", CATEGORIES)
    run = cli("new", "Où sont hébergées nos données ?", "--category", "abonnement",
              "--slug", "hebergement-des-donnees", "--content", root)  # fmt: skip
    assert run.status == 0
    text = (root / "abonnement/hebergement-des-donnees.md").read_text(encoding="utf-8")
    assert "title: Où sont hébergées nos données ?" in text and "draft: true" in text
    bad = cli("new", "X", "--category", "abonnement", "--slug", "Mauvais Slug", "--content", root)
    assert bad.status == 2
    assert "slug invalide « Mauvais Slug » : minuscules sans accents" in bad.err
    taken = cli("new", "Autre", "--category", "abonnement", "--slug", "hebergement-des-donnees",
                "--content", root)  # fmt: skip
    assert taken.status == 2 and "déjà prise" in taken.err


def site(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path / "content",
        {
            **CATEGORIES,
            "abonnement/facture.md": article(
                "Obtenir une facture",
                "Voir [le devis](devis.md#etapes) et [la connexion](../compte-utilisateur/connexion.md).",
                related="[devis]",
            ),
            "abonnement/devis.md": article(
                "Demander un devis",
                "## Étapes\n\nVoir [la facture](facture.md).\n\n```\n[exemple](facture.md)\n```",
                aliases="[ancien-devis]",
                related="\n  - facture",
            ),
            "compte-utilisateur/connexion.md": article(
                "Se connecter", "Voir [le devis][d].\n\n[d]: ../abonnement/devis.md"
            ),
        },
    )


def test_mv_renames_keeps_the_old_address_and_rewrites_links(
    tmp_path: Path, cli: Callable[..., Run]
) -> None:
    root = site(tmp_path)
    run = cli("mv", root / "abonnement/devis.md", "utilisation/demande-de-devis.md",
              "--content", root)  # fmt: skip
    assert run.status == 0, run.err
    assert "Nouvelle adresse « demande-de-devis » ; « devis » reste dans « aliases »" in run.out
    assert not (root / "abonnement/devis.md").exists()
    moved = (root / "utilisation/demande-de-devis.md").read_text(encoding="utf-8")
    assert "aliases: [ancien-devis, devis]" in moved
    # Its own links are written from its new folder; fenced code is left as written.
    assert "[la facture](../abonnement/facture.md)" in moved
    assert "```\n[exemple](facture.md)\n```" in moved
    facture = (root / "abonnement/facture.md").read_text(encoding="utf-8")
    assert "[le devis](../utilisation/demande-de-devis.md#etapes)" in facture
    assert "related: [demande-de-devis]" in facture
    connexion = (root / "compte-utilisateur/connexion.md").read_text(encoding="utf-8")
    assert "[d]: ../utilisation/demande-de-devis.md" in connexion
    _, problems = check(root)
    assert [str(p) for p in problems if not p.warning] == []
    index = tmp_path / "index"
    build(root, index)
    snapshot = SearchIndex(index).snapshot()
    assert snapshot.article("demande-de-devis") is not None
    assert snapshot.aliases["devis"] == "demande-de-devis"


def test_mv_to_another_category_keeps_the_slug(tmp_path: Path, cli: Callable[..., Run]) -> None:
    root = site(tmp_path)
    run = cli("mv", "devis", "utilisation", "--content", root)
    assert run.status == 0, run.err
    moved = (root / "utilisation/devis.md").read_text(encoding="utf-8")
    assert "aliases: [ancien-devis]" in moved  # same address: nothing to redirect
    assert "[le devis](../utilisation/devis.md#etapes)" in (
        root / "abonnement/facture.md"
    ).read_text(encoding="utf-8")
    assert [p for p in check(root)[1] if not p.warning] == []


def test_mv_renaming_back_drops_the_alias(tmp_path: Path, cli: Callable[..., Run]) -> None:
    root = site(tmp_path)
    assert cli("mv", "devis", "nouveau-devis", "--content", root).status == 0
    assert cli("mv", "nouveau-devis", "devis", "--content", root).status == 0
    text = (root / "abonnement/devis.md").read_text(encoding="utf-8")
    assert "aliases: [ancien-devis, nouveau-devis]" in text
    assert "related: [devis]" in (root / "abonnement/facture.md").read_text(encoding="utf-8")


def test_mv_refuses_clashes_and_changes_nothing(tmp_path: Path, cli: Callable[..., Run]) -> None:
    root = site(tmp_path)
    before = {p: p.read_text(encoding="utf-8") for p in root.rglob("*.md")}
    for destination, message in [
        ("facture", "abonnement/facture.md existe déjà"),
        ("Mauvais Nom", "ni une catégorie"),
        ("divers/x.md", "écrivez « catégorie/nom.md »"),
    ]:
        run = cli("mv", "devis", destination, "--content", root)
        assert run.status == 2 and message in run.err, (destination, run.err)
    taken = cli("mv", "facture", "ancien-devis", "--content", root)
    assert taken.status == 2 and "l'adresse « ancien-devis » est déjà prise" in taken.err
    missing = cli("mv", "inconnu", "x", "--content", root)
    assert missing.status == 2 and "article introuvable « inconnu »" in missing.err
    assert {p: p.read_text(encoding="utf-8") for p in root.rglob("*.md")} == before


def test_search_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    """`kb search … | head`: the reader is gone before kb writes; no BrokenPipeError."""
    root = write_tree(
        tmp_path / "content",
        {**CATEGORIES, **{f"abonnement/a{n}.md": article(f"Facture {n}") for n in range(40)}},
    )
    build(root, tmp_path / "index")
    command = [sys.executable, "-m", "kb.cli", "search", "facture", "--limit", "40",
               "--content", str(root), "--index", str(tmp_path / "index")]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # as `head` does once it has its lines
        error = process.stderr.read().decode()
        assert process.wait(timeout=60) == 0
    assert error == ""
