"""The pages, as a user gets them: French, escaped, working without JavaScript."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape

import pytest
from conftest import Web, article

FILES = {
    "compte-utilisateur/mot-de-passe-oublie.md": article(
        "J'ai oublié mon mot de passe",
        "## Demander un lien\n\nCliquez sur **Mot de passe oublié ?**.\n\n"
        "Voir aussi [modifier](modifier-mot-de-passe.md).",
        summary="Choisir un nouveau mot de passe.",
        aliases="[mdp-perdu]",
        related="[importer]",
        updated="2026-11-01",
        featured=1,
    ),
    "compte-utilisateur/modifier-mot-de-passe.md": article(
        "Modifier son mot de passe", "Dans l'espace personnel.", order=1
    ),
    "abonnement/renouveler.md": article("Renouveler l'abonnement", "Avant l'échéance."),
    "utilisation/importer.md": article("Importer des fichiers", "Choisissez le fichier CSV."),
    "utilisation/brouillon.md": article("Article en cours", "Pas encore publié.", draft="true"),
}


@pytest.fixture
def web(make_web: Callable[..., Web]) -> Web:
    return make_web(FILES)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_home_has_the_search_the_categories_the_frequent_questions_and_tickets(web: Web) -> None:
    response = web.client.get("/")
    assert response.status_code == 200
    html = response.text
    assert 'placeholder="Rechercher dans l\'assistance..."' in html
    assert 'role="search"' in html and 'action="/recherche"' in html
    text = text_of(html)
    assert "Votre demande concerne" in text
    tiles = re.findall(r'<a class="tile" href="/categories/([^"]+)">([^<]+)</a>', html)
    assert [(slug, unescape(title)) for slug, title in tiles] == [
        ("compte-utilisateur", "Compte utilisateur"),
        ("abonnement", "Abonnement"),
        ("utilisation", "Utilisation de l'application"),
    ]
    assert (
        "text-transform: uppercase"
        in web.client.get(
            re.search(r'href="(/static/kb\.[0-9a-f]+\.css)"', html)[1]  # type: ignore[index]
        ).text
    )  # shown as COMPTE UTILISATEUR, read as words by screen readers
    assert "Questions les plus fréquentes" in text
    assert "J&#39;ai oublié mon mot de passe" in html  # the pinned article
    assert "Vous ne trouvez pas de réponses à votre question ?" in text
    assert '<a class="button button--primary" href="/tickets">Créer un ticket d\'aide</a>' in html


def test_layout_landmarks_skip_link_and_accessibility_statement(web: Web) -> None:
    html = web.client.get("/").text
    assert '<html lang="fr">' in html
    assert '<a class="skip-link" href="#contenu">Aller au contenu</a>' in html
    assert 'role="banner"' in html and '<main id="contenu"' in html
    assert 'role="contentinfo"' in html
    assert '<a href="/accessibilite">Accessibilité : partiellement conforme</a>' in html
    statement = web.client.get("/accessibilite")
    assert statement.status_code == 200
    assert "partiellement conforme" in statement.text and "Défenseur des droits" in statement.text


def test_search_page_ranks_highlights_and_keeps_the_query(web: Web) -> None:
    response = web.client.get("/recherche", params={"q": "mdp oublié"})
    assert response.status_code == 200
    html = response.text
    assert 'value="mdp oublié"' in html
    titles = re.findall(r'<h2 class="result__title"><a href="([^"]+)">', html)
    assert titles[0] == "/articles/mot-de-passe-oublie"
    assert "<mark>oublié</mark>" in html
    assert re.search(r'role="status">\d+ résultats? pour « mdp oublié »', html)


def test_search_page_filters_by_category_with_counts(web: Web) -> None:
    html = web.client.get("/recherche", params={"q": "mot de passe fichier"}).text
    assert re.search(r"Compte utilisateur <span class=\"facets__count\">2</span>", html)
    assert re.search(
        r"Utilisation de l&#39;application <span class=\"facets__count\">1</span>", html
    )
    filtered = web.client.get(
        "/recherche", params={"q": "mot de passe fichier", "categorie": "utilisation"}
    ).text
    assert re.findall(r'<h2 class="result__title"><a href="([^"]+)">', filtered) == [
        "/articles/importer"
    ]
    assert 'name="categorie" value="utilisation"' in filtered


def test_search_page_suggests_a_better_spelling(web: Web) -> None:
    html = web.client.get("/recherche", params={"q": "renouveller"}).text
    assert "Essayez avec" in html and ">renouveler</a>" in html


def test_search_page_without_result_is_kind_and_offers_a_ticket(web: Web) -> None:
    response = web.client.get("/recherche", params={"q": "xylophone"})
    text = text_of(response.text)
    assert response.status_code == 200
    assert "Aucun article ne correspond à votre recherche" in text
    assert "Les questions les plus fréquentes" in text
    assert "Créer un ticket d'aide" in text.replace("&#39;", "'")


def test_search_page_paginates(make_web: Callable[..., Web]) -> None:
    files = {f"abonnement/f{n:02}.md": article(f"Facture {n}", "facture") for n in range(23)}
    web = make_web(files)
    first = web.client.get("/recherche", params={"q": "facture"}).text
    assert 'aria-label="Pages de résultats"' in first and 'rel="next"' in first
    third = web.client.get("/recherche", params={"q": "facture", "page": 3}).text
    assert len(re.findall('class="result"', third)) == 3
    assert '<ol class="results" start="21">' in third


def test_search_page_refuses_bad_input_clearly_and_keeps_it(web: Web) -> None:
    long = web.client.get("/recherche", params={"q": "a" * 600})
    assert long.status_code == 400
    assert "La recherche est trop longue : 500 caractères au plus." in long.text
    page = web.client.get("/recherche", params={"q": "x", "page": "deux"})
    assert page.status_code == 400
    assert "Le paramètre « page » doit être un nombre entier." in page.text
    category = web.client.get("/recherche", params={"q": "x", "categorie": "inconnue"})
    assert category.status_code == 400 and "Catégorie inconnue" in category.text


def test_search_output_is_escaped(make_web: Callable[..., Web]) -> None:
    web = make_web({"abonnement/a.md": article("Facture", "facture")})
    html = web.client.get("/recherche", params={"q": '<script>alert("x")</script> facture'}).text
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; facture" in html


def test_category_page_lists_articles_in_editors_order(web: Web) -> None:
    response = web.client.get("/categories/compte-utilisateur")
    assert response.status_code == 200
    links = re.findall(r'class="article-list__link" href="([^"]+)"', response.text)
    assert links == ["/articles/modifier-mot-de-passe", "/articles/mot-de-passe-oublie"]
    assert "Le compte." in response.text  # its description
    assert 'href="/tickets/nouveau?categorie=compte-utilisateur"' in response.text
    assert web.client.get("/categories/nulle-part").status_code == 404


def test_article_page(web: Web) -> None:
    response = web.client.get("/articles/mot-de-passe-oublie")
    assert response.status_code == 200
    html = response.text
    assert '<nav class="breadcrumbs" aria-label="Fil d\'Ariane">' in html
    assert '<a href="/categories/compte-utilisateur">Compte utilisateur</a>' in html
    assert '<h1 id="article-titre">J&#39;ai oublié mon mot de passe</h1>' in html
    assert 'Mis à jour le <time datetime="2026-11-01">1er novembre 2026</time>' in html
    assert '<h2 id="demander-un-lien">' in html and 'href="#demander-un-lien"' in html
    assert '<a href="/articles/modifier-mot-de-passe">modifier</a>' in html
    related = re.search(r'<section class="related".*?</section>', html, re.S)[0]  # type: ignore[index]
    links = re.findall(r'href="(/articles/[^"]+)"', related)
    assert links[0] == "/articles/importer"  # the editors' choice first
    assert "/articles/mot-de-passe-oublie" not in links
    assert "Cet article vous a-t-il été utile ?" in html
    assert 'href="/tickets/nouveau?categorie=compte-utilisateur"' in html


def test_old_slug_redirects_and_drafts_are_not_found(web: Web) -> None:
    moved = web.client.get("/articles/mdp-perdu")
    assert moved.status_code == 301
    assert moved.headers["location"] == "/articles/mot-de-passe-oublie"
    assert web.client.get("/articles/brouillon").status_code == 404
    assert "Article en cours" not in web.client.get("/categories/utilisation").text


def test_drafts_show_in_preview_mode(make_web: Callable[..., Web]) -> None:
    web = make_web(FILES, show_drafts=True)
    response = web.client.get("/articles/brouillon")
    assert response.status_code == 200 and "Brouillon" in response.text


def test_vote_without_javascript(web: Web) -> None:
    token = web.csrf()
    response = web.client.post("/articles/importer/vote", data={"csrf": token, "utile": "oui"})
    assert response.status_code == 303
    assert response.headers["location"] == "/articles/importer?vote=oui#vote"
    thanks = web.client.get("/articles/importer?vote=oui").text
    assert "Merci pour votre avis !" in thanks
    assert web.services.usage.flush() == 2  # the vote and the view


def test_vote_with_javascript_answers_json(web: Web) -> None:
    token = web.csrf()
    response = web.client.post(
        "/articles/importer/vote",
        data={"csrf": token, "utile": "non"},
        headers={"accept": "application/json"},
    )
    assert response.json()["vote"] == "non"
    assert "créez un ticket d'aide" in response.json()["message"]


def test_vote_is_refused_without_csrf_token_or_answer(web: Web) -> None:
    web.csrf()
    refused = web.client.post("/articles/importer/vote", data={"utile": "oui"})
    assert refused.status_code == 403
    assert "Le formulaire a expiré ou ne vient pas de ce site." in refused.text
    token = web.client.cookies["kb_csrf"]
    bad = web.client.post("/articles/importer/vote", data={"csrf": token, "utile": "peut-être"})
    assert bad.status_code == 400 and "Répondez « Oui » ou « Non »" in bad.text


def test_not_found_page_is_french_in_the_site_layout(web: Web) -> None:
    response = web.client.get("/nulle-part")
    assert response.status_code == 404
    assert "<title>Page introuvable" in response.text
    assert "La page demandée n&#39;existe pas ou a été déplacée." in response.text
    assert 'role="search"' in response.text


def test_server_error_page_is_french_without_traceback(make_web: Callable[..., Web]) -> None:
    web = make_web(FILES)

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret detail")

    web.services.index.snapshot().search = boom  # type: ignore[method-assign]
    client = type(web.client)(web.app, raise_server_exceptions=False)
    response = client.get("/recherche", params={"q": "x"})
    assert response.status_code == 500
    assert "Une erreur inattendue s&#39;est produite." in response.text
    assert "secret detail" not in response.text and "Traceback" not in response.text


def test_security_headers(web: Web) -> None:
    headers = web.client.get("/").headers
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"


def test_no_inline_script_or_style_and_nothing_from_elsewhere(web: Web) -> None:
    for path in ("/", "/recherche?q=mot", "/articles/mot-de-passe-oublie", "/nulle-part"):
        html = web.client.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert "<style" not in html and " style=" not in html, path
        assert not re.search(r'(src|href)="(https?:)?//', html), path


def test_static_assets_have_hashed_urls_and_long_cache(web: Web) -> None:
    html = web.client.get("/").text
    url = re.search(r'<script src="(/static/kb\.[0-9a-f]{10}\.js)" defer>', html)[1]  # type: ignore[index]
    response = web.client.get(url)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert web.client.get("/static/kb.0000000000.js").headers["cache-control"] == "no-cache"
    assert web.client.get("/static/../config.py").status_code == 404
    vendored = web.services.templates.env.globals["static"]("tus.min.js")  # a dotted name
    assert vendored.startswith("/static/tus.min.") and web.client.get(vendored).status_code == 200


def test_html_and_json_are_compressed(web: Web) -> None:
    page = web.client.get("/articles/mot-de-passe-oublie", headers={"accept-encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip"
    api = web.client.get("/api/search?q=mot+de+passe+fichier", headers={"accept-encoding": "gzip"})
    assert api.headers["content-encoding"] == "gzip"
    assert api.headers["vary"] == "Accept-Encoding"
    # A client that does not ask for gzip gets the same answer uncompressed, and caches are
    # told that the encoding depends on the request.
    plain = web.client.get("/api/search?q=mot+de+passe+fichier", headers={"accept-encoding": ""})
    assert "content-encoding" not in plain.headers and plain.json() == api.json()
    assert plain.headers["vary"] == "Accept-Encoding"
    assert plain.headers["x-content-type-options"] == "nosniff"


def test_healthz(web: Web) -> None:
    response = web.client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and response.json()["database"] == "ok"
