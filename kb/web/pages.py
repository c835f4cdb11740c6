"""The help center's pages: home, search, categories, articles, votes, accessibility."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from kb.errors import BadRequest, NotFound
from kb.knowledge.search import Snapshot
from kb.web.formatting import results_count
from kb.web.params import int_param
from kb.web.security import CSRF_FIELD, check_csrf

RELATED_COUNT = 5


def routes() -> list[Route]:
    return [
        Route("/", home, name="home"),
        Route("/recherche", search, name="search"),
        Route("/categories/{slug}", category, name="category"),
        Route("/articles/{slug}", article, name="article"),
        Route("/articles/{slug}/vote", vote, methods=["POST"], name="vote"),
        Route("/accessibilite", accessibility, name="accessibility"),
    ]


def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    """A page: the shared context (categories, CSRF token, ticket links) plus its own."""
    snapshot: Snapshot = request.app.state.index.snapshot()
    base = {
        "categories": snapshot.categories,
        "csrf_field": CSRF_FIELD,
        "csrf_token": request.state.csrf,
        "account": request.state.account,
        "preview": request.app.state.preview,
    }
    return request.app.state.templates.TemplateResponse(
        request, template, {**base, **context}, status_code=status
    )


def _snapshot(request: Request) -> Snapshot:
    snapshot: Snapshot = request.app.state.index.snapshot()
    return snapshot


async def home(request: Request) -> Response:
    return render(request, "home.html", frequent=request.app.state.frequent)


async def search(request: Request) -> Response:
    snapshot = _snapshot(request)
    query = request.query_params.get("q", "")
    category = request.query_params.get("categorie") or None
    page = int_param(request, "page", default=1, low=1, high=1000)
    settings = request.app.state.settings
    try:
        results = snapshot.search(query, category=category, page=page, drafts=settings.show_drafts)
    except BadRequest as exc:
        return render(
            request, "search.html", status=400, query=query, error=exc.message, results=None,
            frequent=request.app.state.frequent, category_titles=_titles(snapshot),
        )  # fmt: skip
    if page == 1 and not results.empty_query:
        request.app.state.usage.search(query, results.total)
    return render(
        request,
        "search.html",
        query=query,
        results=results,
        error=None,
        count=results_count(results.total),
        category=category,
        category_titles=_titles(snapshot),
        frequent=request.app.state.frequent,
    )


def _titles(snapshot: Snapshot) -> dict[str, str]:
    return {c["slug"]: c["title"] for c in snapshot.categories}


async def category(request: Request) -> Response:
    snapshot = _snapshot(request)
    slug = request.path_params["slug"]
    found = next((c for c in snapshot.categories if c["slug"] == slug), None)
    if found is None:
        raise NotFound("Cette catégorie n'existe pas.")
    articles = snapshot.articles_in(slug, drafts=request.app.state.settings.show_drafts)
    return render(request, "category.html", category=found, articles=articles)


async def article(request: Request) -> Response:
    snapshot = _snapshot(request)
    slug = request.path_params["slug"]
    drafts = request.app.state.settings.show_drafts
    page = snapshot.article(slug, drafts=drafts)
    if page is None:
        target = snapshot.aliases.get(slug)
        if target is not None:
            return RedirectResponse(f"/articles/{target}", status_code=301)
        raise NotFound("Cet article n'existe pas ou n'est plus publié.")
    request.app.state.usage.view(page.slug)
    if request.query_params.get("depuis") == "ticket":
        account = request.state.account
        request.app.state.usage.suggestion_opened(page.slug, account.id if account else None)
    related = _related(snapshot, page.slug, page.related, drafts)
    category_info = next((c for c in snapshot.categories if c["slug"] == page.category), None)
    return render(
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


async def vote(request: Request) -> Response:
    snapshot = _snapshot(request)
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
    request.app.state.usage.vote(slug, answer == "oui")
    if request.headers.get("accept", "").startswith("application/json"):
        return JSONResponse({"message": THANKS[str(answer)], "vote": answer})
    return RedirectResponse(f"/articles/{slug}?vote={answer}#vote", status_code=303)


async def accessibility(request: Request) -> Response:
    return render(request, "accessibilite.html")
