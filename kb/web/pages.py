"""The help center's pages: home, search, categories, articles, votes, accessibility."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from kb.errors import BadRequest, NotFound
from kb.knowledge.search import Snapshot
from kb.web.errors import wants_json
from kb.web.formatting import results_count
from kb.web.params import int_param
from kb.web.security import CSRF_FIELD, check_csrf
from kb.web.services import Services, bind

RELATED_COUNT = 5


def routes(services: Services) -> list[Route]:
    return [
        Route("/", bind(services, home), name="home"),
        Route("/recherche", bind(services, search), name="search"),
        Route("/categories/{slug}", bind(services, category), name="category"),
        Route("/articles/{slug}", bind(services, article), name="article"),
        Route("/articles/{slug}/vote", bind(services, vote), methods=["POST"], name="vote"),
        Route("/accessibilite", bind(services, accessibility), name="accessibility"),
    ]


async def home(services: Services, request: Request) -> Response:
    return services.render(request, "home.html")


async def search(services: Services, request: Request) -> Response:
    snapshot = services.snapshot()
    query = request.query_params.get("q", "")
    category = request.query_params.get("categorie") or None
    page = int_param(request, "page", default=1, low=1, high=1000)
    settings = services.settings
    try:
        with services.metrics.searches.time():
            results = snapshot.search(
                query, category=category, page=page, drafts=settings.show_drafts
            )
    except BadRequest as exc:
        return services.render(
            request,
            "search.html",
            status=400,
            query=query,
            error=exc.message,
            results=None,
            category_titles=_titles(snapshot),
        )
    if page == 1 and not results.empty_query:
        services.usage.search(query, results.total, results.weak)
    return services.render(
        request,
        "search.html",
        query=query,
        results=results,
        error=None,
        count=results_count(results.total),
        category=category,
        category_titles=_titles(snapshot),
    )


def _titles(snapshot: Snapshot) -> dict[str, str]:
    return {c["slug"]: c["title"] for c in snapshot.categories}


async def category(services: Services, request: Request) -> Response:
    snapshot = services.snapshot()
    slug = request.path_params["slug"]
    found = next((c for c in snapshot.categories if c["slug"] == slug), None)
    if found is None:
        raise NotFound("Cette catégorie n'existe pas.")
    articles = snapshot.articles_in(slug, drafts=services.settings.show_drafts)
    return services.render(request, "category.html", category=found, articles=articles)


async def article(services: Services, request: Request) -> Response:
    snapshot = services.snapshot()
    slug = request.path_params["slug"]
    drafts = services.settings.show_drafts
    page = snapshot.article(slug, drafts=drafts)
    if page is None:
        target = snapshot.aliases.get(slug)
        if target is not None:
            return RedirectResponse(f"/articles/{target}", status_code=301)
        raise NotFound("Cet article n'existe pas ou n'est plus publié.")
    services.usage.view(page.slug)
    account = request.state.account
    if account is not None and account.role == "etablissement":
        services.usage.read_by(page.slug, account.id)
    if request.query_params.get("depuis") == "ticket":
        services.usage.suggestion_opened(page.slug, account.id if account else None)
    related = _related(snapshot, page.slug, page.related, drafts)
    category_info = next((c for c in snapshot.categories if c["slug"] == page.category), None)
    return services.render(
        request,
        "article.html",
        article=page,
        category=category_info,
        related=related,
        voted=request.query_params.get("vote"),
    )


def _related(
    snapshot: Snapshot, slug: str, chosen: list[str], drafts: bool
) -> list[dict[str, Any]]:
    """The editors' choice first, completed by similar articles from the index."""
    related: list[dict[str, Any]] = []
    for other in [*chosen, *snapshot.similar(slug, limit=RELATED_COUNT)]:
        listing = snapshot.listing_of(other)
        if listing is None or other == slug or listing in related:
            continue
        if listing["draft"] and not drafts:
            continue
        related.append(listing)
        if len(related) == RELATED_COUNT:
            break
    return related


THANKS = {
    "oui": "Merci pour votre avis !",
    "non": "Merci pour votre avis. Si la réponse ne vous aide pas, créez un ticket d'aide.",
}


async def vote(services: Services, request: Request) -> Response:
    snapshot = services.snapshot()
    slug = request.path_params["slug"]
    if snapshot.article(slug) is None:
        raise NotFound("Cet article n'existe pas ou n'est plus publié.")
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD))
    answer = form.get("utile")
    if answer not in THANKS:
        raise BadRequest(
            "Répondez « Oui » ou « Non » à la question « Cet article vous a-t-il été utile ? »."
        )
    services.usage.vote(slug, answer == "oui")
    if wants_json(request):
        return JSONResponse({"message": THANKS[str(answer)], "vote": answer})
    return RedirectResponse(f"/articles/{slug}?vote={answer}#vote", status_code=303)


async def accessibility(services: Services, request: Request) -> Response:
    return services.render(request, "accessibilite.html")
