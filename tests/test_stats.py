"""kb stats and /rapport show the content's gaps: searches as typed, weak results beside empty
ones, reads under old slugs merged, and the editors' own preview left out."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable

import pytest
from conftest import PASSWORD, Run, Web, article, log_in, page
from starlette.testclient import TestClient

from kb.helpdesk import accounts
from kb.web.app import create_app

FILES = {
    "utilisation/emplois.md": article(
        "Les emplois de la plateforme", "Un emploi par personne.", aliases="[vieux-emplois]"
    ),
    "abonnement/delai.md": article("Délai de réponse", "Le temps de réponse du support."),
}


@pytest.fixture
def web(make_web: Callable[..., Web], database_url: str, monkeypatch: pytest.MonkeyPatch) -> Web:
    web = make_web(FILES, database_url=database_url)
    monkeypatch.setenv("KB_DATA_DIR", str(web.settings.data_dir))
    monkeypatch.setenv("KB_DATABASE_URL", web.settings.database_url)
    return web


def test_gaps_as_typed_weak_beside_empty_reads_merged(web: Web, cli: Callable[..., Run]) -> None:
    for query in ("Emploi du temps", "emploi du temps", "Emploi du Temps"):
        web.client.get("/recherche", params={"q": query})  # every word found, never together
    web.client.get("/recherche", params={"q": "Télétravail à l'école"})
    web.client.get("/recherche", params={"q": "emplois"})  # a good answer: not a gap
    web.services.usage.view("vieux-emplois")  # read under its old slug, before the rename
    web.client.get("/articles/emplois")
    web.services.usage.flush()

    run = cli("stats", "--json", "--index", web.site.index)
    assert run.status == 0, run.err
    data = json.loads(run.out)
    assert [(r["query"], r["count"]) for r in data["no_result"]] == [("Télétravail à l'école", 1)]
    assert [(r["query"], r["count"], r["results"]) for r in data["weak_results"]] == [
        ("Emploi du Temps", 3, 2)
    ]
    assert data["most_viewed"] == [
        {"slug": "emplois", "title": "Les emplois de la plateforme", "views": 2}
    ]

    text = cli("stats", "--index", web.site.index).out
    assert re.search(r"Recherches aux résultats faibles.*\n  Recherche +Fois +Résultats +"
                     r"Dernière fois\n  Emploi du Temps +3 +2 +\d\d/\d\d/\d{4} \d\d:\d\d", text)  # fmt: skip
    assert re.search(r"\n  Recherche +Fois +Dernière fois\n  Télétravail à l'école +1 ", text)
    assert re.search(r"\n  Article +Lectures\n  Les emplois de la plateforme +2\n", text)

    account, _ = accounts.save(web.services.engine, role="editeur", login="ed@cpro.fr",
                               establishment="", first_name="Ed", last_name="Iteur",
                               email="ed@cpro.fr")  # fmt: skip
    accounts.set_password(web.services.engine, account, PASSWORD)
    assert log_in(web, "ed@cpro.fr").status_code == 303
    report = page(web, "/rapport")
    assert "Recherches aux résultats faibles" in report.text
    assert "Télétravail à l'école" in [r["query"] for r in report.context["report"].no_result]
    assert "Télétravail à l'école" in report.text
    assert report.link("Emploi du Temps") == "/recherche?q=Emploi+du+Temps"


def test_the_preview_counts_no_reads_searches_or_votes(web: Web) -> None:
    settings = dataclasses.replace(web.settings, live_reload=True, show_drafts=True)
    with TestClient(create_app(settings, background=False)) as client:
        client.get("/articles/emplois")
        client.get("/recherche", params={"q": "emploi"})
        client.get("/api/search", params={"q": "emploi"})
        client.app.state.services.usage.flush()  # type: ignore[attr-defined]
    web.services.usage.flush()
    with web.services.engine.connect() as connection:
        from kb import tables

        assert connection.execute(tables.article_views.select()).all() == []
        assert connection.execute(tables.searches.select()).all() == []
