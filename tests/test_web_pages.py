"""The pages, as a user gets them: French, escaped, working without JavaScript."""

from __future__ import annotations

import re
from collections.abc import Callable

import jinja2
import pytest
from conftest import Page, Web, article, page

from kb.insights import accessibility

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


def test_home_has_the_search_the_categories_the_frequent_questions_and_tickets(web: Web) -> None:
    home = page(web, "/")
    assert home.status == 200 and home.template == "home.html"
    [box] = [f for f in home.fields if f.get("type") == "search"]
    assert box["placeholder"] == "Rechercher dans l'assistance..."
    assert home.having("form", role="search", action="/recherche")
    assert "Votre demande concerne" in home.text
    assert [c["title"] for c in home.context["categories"]] == [
        "Compte utilisateur",
        "Abonnement",
        "Utilisation de l'application",
    ]
    assert home.link("Abonnement") == "/categories/abonnement"
    [stylesheet] = home.having("link", rel="stylesheet")
    # Shown as COMPTE UTILISATEUR, read as words by screen readers.
    assert "text-transform: uppercase" in web.client.get(stylesheet["href"]).text
    assert "Questions les plus fréquentes" in home.text
    assert home.link("J'ai oublié mon mot de passe") == "/articles/mot-de-passe-oublie"  # pinned
    assert "Vous ne trouvez pas de réponses à votre question ?" in home.text
    assert home.link("Créer un ticket d'aide") == "/tickets"


def test_the_macros_are_built_once_not_for_every_page(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages import _macros.html without their context (url_for needs no request): Jinja2
    keeps the module it built. Imported with the context, it was built again for every page,
    a tenth of the home page's time. Pages with an upload form still import it with theirs."""
    built: list[str] = []
    make_module = jinja2.Template.make_module

    def counted(self: jinja2.Template, *args: object, **kwargs: object) -> object:
        built.append(self.name or "")
        return make_module(self, *args, **kwargs)

    monkeypatch.setattr(jinja2.Template, "make_module", counted)
    for path in ("/", "/recherche?q=mot+de+passe", "/categories/abonnement",
                 "/articles/mot-de-passe-oublie", "/connexion", "/", "/nulle-part"):  # fmt: skip
        web.client.get(path)
    assert built.count("_macros.html") <= 1
    home = page(web, "/")
    assert home.link("Créer un ticket d'aide") == "/tickets"
    assert home.having("form", role="search", action="/recherche")


def test_layout_landmarks_skip_link_and_accessibility_statement(web: Web) -> None:
    home = page(web, "/")
    assert home.having("html", lang="fr")
    assert home.links[0] == ("#contenu", "Aller au contenu")  # the first stop of the keyboard
    assert home.having("header", role="banner") and home.having("main", id="contenu")
    assert home.having("footer", role="contentinfo")
    status = accessibility.load().status  # the footer says what the audit grid says
    assert ("/accessibilite", f"Accessibilité : {status}") in home.links
    statement = page(web, "/accessibilite")
    assert statement.status == 200 and statement.template == "accessibilite.html"
    assert status in statement.text and "Défenseur des droits" in statement.text


def test_search_page_ranks_highlights_and_keeps_the_query(web: Web) -> None:
    found = page(web, "/recherche", q="mdp oublié")
    assert found.status == 200 and found.template == "search.html"
    assert found.context["query"] == "mdp oublié"
    assert any(f.get("name") == "q" and f.get("value") == "mdp oublié" for f in found.fields)
    assert found.context["results"].hits[0].slug == "mot-de-passe-oublie"
    assert found.having("mark")  # the matched words, highlighted
    assert re.search(r"\d+ résultats? pour « mdp oublié »", found.text)


def test_search_page_filters_by_category_with_counts(web: Web) -> None:
    found = page(web, "/recherche", q="mot de passe fichier")
    assert found.context["results"].facets == {"compte-utilisateur": 2, "utilisation": 1}
    assert "Compte utilisateur 2" in found.text and "Utilisation de l'application 1" in found.text
    filtered = page(web, "/recherche", q="mot de passe fichier", categorie="utilisation")
    assert [hit.slug for hit in filtered.context["results"].hits] == ["importer"]
    assert {"tag": "input", "type": "hidden", "name": "categorie", "value": "utilisation"} in [
        {k: f.get(k) for k in ("tag", "type", "name", "value")} for f in filtered.fields
    ]


def test_search_page_suggests_a_better_spelling(web: Web) -> None:
    found = page(web, "/recherche", q="renouveller")
    assert "Essayez avec : renouveler" in found.text
    assert found.link("renouveler") == "/recherche?q=renouveler"


def test_search_page_without_result_is_kind_and_offers_a_ticket(web: Web) -> None:
    found = page(web, "/recherche", q="xylophone")
    assert found.status == 200
    assert "Aucun article ne correspond à votre recherche" in found.text
    assert "Les questions les plus fréquentes" in found.text
    assert "Créer un ticket d'aide" in found.text


def test_search_page_paginates(make_web: Callable[..., Web]) -> None:
    files = {f"abonnement/f{n:02}.md": article(f"Facture {n}", "facture") for n in range(23)}
    web = make_web(files)
    first = page(web, "/recherche", q="facture")
    assert first.having("nav", aria_label="Pages de résultats")
    assert first.link("Page suivante") == "/recherche?q=facture&page=2"
    third = page(web, "/recherche", q="facture", page=3)
    assert len(third.context["results"].hits) == 3
    assert third.having("ol", start="21")  # numbered on from the second page


def test_search_page_refuses_bad_input_clearly_and_keeps_it(web: Web) -> None:
    long = page(web, "/recherche", q="a" * 600)
    assert long.status == 400
    assert "La recherche est trop longue : 500 caractères au plus." in long.text
    number = page(web, "/recherche", q="x", page="deux")
    assert number.status == 400
    assert "Le paramètre « page » doit être un nombre entier." in number.text
    category = page(web, "/recherche", q="x", categorie="inconnue")
    assert category.status == 400 and "Catégorie inconnue" in category.text


def test_search_output_is_escaped(make_web: Callable[..., Web]) -> None:
    web = make_web({"abonnement/a.md": article("Facture", "facture")})
    html = web.client.get("/recherche", params={"q": '<script>alert("x")</script> facture'}).text
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; facture" in html


def test_category_page_lists_articles_in_editors_order(web: Web) -> None:
    listed = page(web, "/categories/compte-utilisateur")
    assert listed.status == 200 and listed.template == "category.html"
    assert [a["slug"] for a in listed.context["articles"]] == [
        "modifier-mot-de-passe",
        "mot-de-passe-oublie",
    ]
    assert "Le compte." in listed.text  # its description
    assert "/tickets/nouveau?categorie=compte-utilisateur" in [href for href, _ in listed.links]
    assert web.client.get("/categories/nulle-part").status_code == 404


def test_article_page(web: Web) -> None:
    shown = page(web, "/articles/mot-de-passe-oublie")
    assert shown.status == 200 and shown.template == "article.html"
    assert shown.having("nav", aria_label="Fil d'Ariane")
    assert shown.link("Compte utilisateur") == "/categories/compte-utilisateur"
    assert shown.context["article"].title == "J'ai oublié mon mot de passe"
    assert "Mis à jour le 1er novembre 2026" in shown.text
    assert shown.having("time", datetime="2026-11-01")
    assert shown.having("h2", id="demander-un-lien")  # a stable anchor, and a link to it
    assert "#demander-un-lien" in [href for href, _ in shown.links]
    assert shown.link("modifier") == "/articles/modifier-mot-de-passe"
    related = [a["slug"] for a in shown.context["related"]]
    assert related[0] == "importer"  # the editors' choice first
    assert "mot-de-passe-oublie" not in related
    assert "Cet article vous a-t-il été utile ?" in shown.text
    assert "/tickets/nouveau?categorie=compte-utilisateur" in [href for href, _ in shown.links]


def test_old_slug_redirects_and_drafts_are_not_found(web: Web) -> None:
    moved = web.client.get("/articles/mdp-perdu")
    assert moved.status_code == 301
    assert moved.headers["location"] == "/articles/mot-de-passe-oublie"
    assert web.client.get("/articles/brouillon").status_code == 404
    assert "Article en cours" not in page(web, "/categories/utilisation").text


def test_drafts_show_in_preview_mode(make_web: Callable[..., Web]) -> None:
    web = make_web(FILES, show_drafts=True)
    draft = page(web, "/articles/brouillon")
    assert draft.status == 200 and "Brouillon" in draft.text


def test_vote_without_javascript(web: Web) -> None:
    token = web.csrf()
    response = web.client.post("/articles/importer/vote", data={"csrf": token, "utile": "oui"})
    assert response.status_code == 303
    assert response.headers["location"] == "/articles/importer?vote=oui#vote"
    assert "Merci pour votre avis !" in page(web, "/articles/importer", vote="oui").text
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
    refused = Page(web.client.post("/articles/importer/vote", data={"utile": "oui"}))
    assert refused.status == 403
    assert "Le formulaire a expiré ou ne vient pas de ce site." in refused.text
    token = web.client.cookies["kb_csrf"]
    bad = Page(
        web.client.post("/articles/importer/vote", data={"csrf": token, "utile": "peut-être"})
    )
    assert bad.status == 400 and "Répondez « Oui » ou « Non »" in bad.text


def test_not_found_page_is_french_in_the_site_layout(web: Web) -> None:
    missing = page(web, "/nulle-part")
    assert missing.status == 404 and missing.template == "error.html"
    assert missing.context["title"] == "Page introuvable"
    assert "La page demandée n'existe pas ou a été déplacée." in missing.text
    assert missing.having("form", role="search")  # and a way on: the search


def test_server_error_page_is_french_without_traceback(make_web: Callable[..., Web]) -> None:
    web = make_web(FILES)

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret detail")

    web.services.index.snapshot().search = boom  # type: ignore[method-assign]
    client = type(web.client)(web.app, raise_server_exceptions=False)
    response = Page(client.get("/recherche", params={"q": "x"}))
    assert response.status == 500
    assert "Une erreur inattendue s'est produite." in response.text
    assert "secret detail" not in response.response.text
    assert "Traceback" not in response.response.text


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
    scripts = [s["src"] for s in page(web, "/").having("script")]
    [url] = [src for src in scripts if re.fullmatch(r"/static/kb\.[0-9a-f]{10}\.js", src)]
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


def test_templates_build_addresses_by_route_name(web: Web) -> None:
    """No hand-written path: every route has a name and the templates use url_for."""
    from pathlib import Path

    from starlette.routing import Route

    names = {
        "/healthz": "healthz", "/accessibilite": "accessibility", "/rapport": "report",
    }  # fmt: skip
    routes = [r for r in web.app.routes if isinstance(r, Route)]

    # Endpoints get their services through functools.partial: a route left unnamed is "partial".
    unnamed = [r.path for r in routes if r.name == "partial"]
    assert not unnamed and len({r.name for r in routes}) == len(routes)
    assert all(web.app.url_path_for(name) == path for path, name in names.items())
    folder = Path(__file__).resolve().parents[1] / "templates"
    templates = sorted(folder.glob("*.html"))
    assert {"admin.html", "support_ticket.html"} <= {p.name for p in templates}
    written = [
        f"{p.name}: {m}"
        for p in templates
        for m in re.findall(r'(?:href|action|src)="/[^"]*"|"/[a-z][^"]*"', p.read_text("utf-8"))
    ]
    assert not written, written
