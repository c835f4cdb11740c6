"""The JSON API: the same search as the pages, one error shape, an OpenAPI description."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import Web, article

FILES = {
    "compte-utilisateur/mot-de-passe-oublie.md": article(
        "J'ai oublié mon mot de passe",
        "## Demander un lien\n\nCliquez sur **Mot de passe oublié ?**.",
        summary="Choisir un nouveau mot de passe.",
        aliases="[mdp-perdu]",
        updated="2026-11-01",
    ),
    "compte-utilisateur/modifier-mot-de-passe.md": article(
        "Modifier son mot de passe", "Dans l'espace personnel."
    ),
    "utilisation/navigateurs.md": article("Navigateurs recommandés", "Chrome ou Firefox."),
}


@pytest.fixture
def web(make_web: Callable[..., Web]) -> Web:
    return make_web(FILES)


def test_search_answers_the_documented_shape(web: Web) -> None:
    body = web.client.get("/api/search", params={"q": "mdp oublié"}).json()
    assert set(body) == {"query", "total", "page", "per_page", "results", "facets", "suggestion"}
    assert (body["query"], body["page"], body["per_page"]) == ("mdp oublié", 1, 10)
    first = body["results"][0]
    assert set(first) == {"slug", "title", "category", "url", "snippet", "score"}
    assert first["slug"] == "mot-de-passe-oublie"
    assert first["url"] == "/articles/mot-de-passe-oublie"
    assert "<mark>" in first["snippet"]
    assert body["facets"] == {"compte-utilisateur": body["total"]}


def test_search_ranks_exactly_as_the_page_and_the_cli(web: Web, cli: Callable[..., object]) -> None:
    api = [r["slug"] for r in web.client.get("/api/search?q=mot+de+passe").json()["results"]]
    snapshot = web.site.snapshot()
    assert api == [h.slug for h in snapshot.search("mot de passe").hits]
    out = cli("search", "mot de passe", "--json", "--index", web.site.index).out  # type: ignore[attr-defined]
    import json

    assert [r["slug"] for r in json.loads(out)["results"]] == api


def test_search_category_and_pagination(web: Web) -> None:
    body = web.client.get("/api/search?q=mot+de+passe+navigateurs&category=utilisation").json()
    assert [r["category"] for r in body["results"]] == ["utilisation"]
    page = web.client.get("/api/search?q=mot+de+passe&per_page=1&page=2").json()
    assert (page["page"], page["per_page"], len(page["results"])) == (2, 1, 1)


def test_suggest_gives_at_most_eight_titles(web: Web) -> None:
    body = web.client.get("/api/suggest", params={"q": "navi"}).json()
    assert body["suggestions"][0] == {
        "slug": "navigateurs",
        "title": "Navigateurs recommandés",
        "url": "/articles/navigateurs",
        "category": "utilisation",
    }
    assert web.client.get("/api/suggest", params={"q": " "}).json()["suggestions"] == []


def test_article(web: Web) -> None:
    body = web.client.get("/api/articles/mot-de-passe-oublie").json()
    assert body["title"] == "J'ai oublié mon mot de passe"
    assert body["updated"] == "2026-11-01"
    assert body["headings"] == [{"level": 2, "text": "Demander un lien", "id": "demander-un-lien"}]
    moved = web.client.get("/api/articles/mdp-perdu")
    assert (moved.status_code, moved.headers["location"]) == (
        301,
        "/api/articles/mot-de-passe-oublie",
    )


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/api/search", 400, "Le paramètre « q » est obligatoire."),
        ("/api/search?q=x&page=0", 400, "Le paramètre « page » doit être compris entre 1 et 1000."),
        ("/api/search?q=x&per_page=abc", 400, "Le paramètre « per_page » doit être un nombre entier."),
        ("/api/search?q=x&per_page=51", 400, "Le paramètre « per_page » doit être compris entre 1 et 50."),
        ("/api/search?q=x&category=nope", 400, "Catégorie inconnue : « nope »."),
        ("/api/search?q=" + "a" * 501, 400, "La recherche est trop longue : 500 caractères au plus."),
        ("/api/suggest", 400, "Le paramètre « q » est obligatoire."),
        # Counted as sent (the schema's maxLength), spaces around it included.
        ("/api/suggest?q=%0B" + "a" * 500, 400, "La recherche est trop longue : 500 caractères au plus."),
        ("/api/articles/nope", 404, "Cet article n'existe pas ou n'est plus publié."),
        ("/api/nope", 404, "La page demandée n'existe pas ou a été déplacée."),
    ],
)  # fmt: skip
def test_every_error_has_one_json_shape(web: Web, url: str, status: int, message: str) -> None:
    response = web.client.get(url)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": {"status": status, "code": response.json()["error"]["code"],
                                         "message": message}}  # fmt: skip


def test_wrong_method_is_a_json_error(web: Web) -> None:
    response = web.client.post("/api/search?q=x")
    assert response.status_code == 405
    assert set(response.json()["error"]) == {"status", "code", "message"}


@pytest.mark.parametrize("query", ["", "!!!", '"', "AND OR NOT", "title:x*", "(((", "🙂" * 50])
def test_odd_queries_never_fail(web: Web, query: str) -> None:
    response = web.client.get("/api/search", params={"q": query})
    assert response.status_code == 200
    assert response.json()["results"] == [] or response.json()["total"] > 0


def test_openapi_describes_every_api_route(web: Web) -> None:
    spec = web.client.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert set(spec["paths"]) == {
        "/api/search", "/api/suggest", "/api/articles/{slug}", "/api/uploads",
        "/api/uploads/{upload_id}",
    }  # fmt: skip
    routes = {
        route.path  # type: ignore[attr-defined]
        for route in web.app.routes
        if route.path.startswith("/api/") and route.path != "/api/openapi.json"  # type: ignore[attr-defined]
    }
    assert routes == set(spec["paths"])
    error = spec["components"]["schemas"]["Error"]["properties"]["error"]
    assert error["required"] == ["status", "code", "message"]


def test_a_query_over_the_limit_is_refused_even_when_blank(web: Web) -> None:
    for path in ("/api/search", "/api/suggest"):
        response = web.client.get(
            path, params={"q": " " * 501, "limit": ""} if "suggest" in path else {"q": " " * 501}
        )
        assert response.status_code == 400, path
        assert response.json()["error"]["message"] == (
            "La recherche est trop longue : 500 caractères au plus."
        )
