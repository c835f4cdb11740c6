"""The shipped articles: true to the product, clean for kb check --strict, found as users ask."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import SHIPPED_CONTENT, Run

from kb.knowledge.search import Snapshot

# What the product does not do or does not say, once written in the shipped articles.
UNTRUE = [
    # "Assistance" opens the help center in a new page by itself: no Ctrl-click needed
    "bouton du milieu de la souris",
    "avec **Ctrl** enfoncé",
    "Vous quittez l'écran en cours",
    "et non avec un nom personnel",  # the product says the administrator account uses the UAI
    "peut être limité ou interrompu",  # what happens after expiry is the support's to say
    "éventuel message d'alerte",
    "devis signé",  # renewal procedure: unknown, asked through a ticket
    "bon de commande interne",
    "bandeau bleuté",
]


def test_shipped_content_passes_the_strict_check(cli: Callable[..., Run]) -> None:
    run = cli("check", "--strict", "--content", SHIPPED_CONTENT)
    assert run.status == 0, run.out
    assert run.out.strip().splitlines()[-1].startswith("Contenu valide : ")


@pytest.mark.parametrize("phrase", UNTRUE)
def test_shipped_content_says_no_more_than_the_product(phrase: str) -> None:
    found = [
        path.relative_to(SHIPPED_CONTENT).as_posix()
        for path in sorted(SHIPPED_CONTENT.rglob("*.md"))
        if phrase in path.read_text(encoding="utf-8")
    ]
    assert found == []


def test_the_product_is_named_and_the_administrator_account_found(shipped: Snapshot) -> None:
    first = shipped.search("compte administrateur").hits[0]
    assert first.slug == "se-connecter-avec-le-code-uai"
    text = " ".join(p.read_text(encoding="utf-8") for p in SHIPPED_CONTENT.rglob("*.md"))
    assert "CPRO STI" in text


@pytest.mark.parametrize(
    ("query", "slug"),
    [
        ("comment se connectent les enseignants", "connexion-des-autres-personnels"),
        ("exporter les données", "exporter-des-donnees"),
        ("où sont hébergées nos données", "hebergement-et-donnees-personnelles"),
        ("RGPD", "hebergement-et-donnees-personnelles"),
        ("accueil modules", "accueil-de-cpro-sti"),
        ("où trouver mes tickets", "suivre-ses-tickets"),
    ],
)
def test_the_questions_school_administrators_ask_are_answered(
    shipped: Snapshot, query: str, slug: str
) -> None:
    assert slug in [hit.slug for hit in shipped.search(query).hits[:3]]
