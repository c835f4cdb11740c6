"""The JSON API: the same search as the pages, one error shape, described at /api/openapi.json."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from kb.errors import BadRequest, NotFound
from kb.knowledge.search.searcher import MAX_QUERY_CHARS, PER_PAGE_MAX
from kb.web.compression import precompressed
from kb.web.params import int_param
from kb.web.services import Services, bind

SUGGEST_MAX = 8


def routes(services: Services) -> list[Route]:
    return [
        Route("/api/search", bind(services, search), name="api_search"),
        Route("/api/suggest", bind(services, suggest), name="api_suggest"),
        Route("/api/articles/{slug}", bind(services, article), name="api_article"),
        Route("/api/openapi.json", bind(services, openapi), name="api_openapi"),
    ]


def _query(request: Request) -> str:
    query = request.query_params.get("q")
    if query is None:
        raise BadRequest("Le paramètre « q » est obligatoire.")
    if len(query) > MAX_QUERY_CHARS:  # blank or not: the documented limit holds for every q
        raise BadRequest(f"La recherche est trop longue : {MAX_QUERY_CHARS} caractères au plus.")
    return query


async def search(services: Services, request: Request) -> Response:
    snapshot = services.snapshot()
    query = _query(request)
    page = int_param(request, "page", default=1, low=1, high=1000)
    per_page = int_param(request, "per_page", default=10, low=1, high=PER_PAGE_MAX)
    category = request.query_params.get("category") or None
    with services.metrics.searches.time():
        results = snapshot.search(
            query,
            category=category,
            page=page,
            per_page=per_page,
            drafts=services.settings.show_drafts,
        )
    if page == 1 and not results.empty_query:
        services.usage.search(query, results.total, results.weak)
    return precompressed(results.json_bytes, request.scope, "application/json")


async def suggest(services: Services, request: Request) -> Response:
    snapshot = services.snapshot()
    query = _query(request)
    limit = int_param(request, "limit", default=SUGGEST_MAX, low=1, high=SUGGEST_MAX)
    suggestions = []
    if query.strip():
        with services.metrics.suggestions.time():
            suggestions = snapshot.suggest(query, limit=limit)
    # Encoded by orjson, as the search's answers are (results.py): typed letter by letter.
    return Response(orjson.dumps({"query": query, "suggestions": suggestions}),
                    media_type="application/json")  # fmt: skip


async def article(services: Services, request: Request) -> Response:
    snapshot = services.snapshot()
    slug = request.path_params["slug"]
    page = snapshot.article(slug, drafts=services.settings.show_drafts)
    if page is None:
        target = snapshot.aliases.get(slug)
        if target is not None:
            return RedirectResponse(f"/api/articles/{target}", status_code=301)
        raise NotFound("Cet article n'existe pas ou n'est plus publié.")
    return JSONResponse(
        {
            "slug": page.slug,
            "title": page.title,
            "category": page.category,
            "url": page.url,
            "summary": page.summary,
            "updated": page.updated,
            "html": page.html,
            "headings": [{"level": h[0], "text": h[1], "id": h[2]} for h in page.headings],
            "related": page.related,
        }
    )


async def openapi(services: Services, request: Request) -> Response:
    return JSONResponse(OPENAPI)


_ERROR = {"$ref": "#/components/responses/Error"}


def _param(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict:
    param = {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }
    if schema.get("type") == "integer":
        param["allowEmptyValue"] = True  # empty: the default
    return param


def _header(name: str, schema: dict[str, Any], description: str, required: bool = True) -> dict:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "schema": schema,
        "description": description,
    }


_TUS = _header("Tus-Resumable", {"type": "string", "enum": ["1.0.0"]}, "Version du protocole")
_CSRF = _header("X-CSRF-Token", {"type": "string"}, "La valeur du cookie kb_csrf")
_TUS_ERRORS = {code: _ERROR for code in ("400", "401", "403", "404", "412")}


_HIT = {
    "type": "object",
    "required": ["slug", "title", "category", "url", "snippet", "score"],
    "properties": {
        "slug": {"type": "string"},
        "title": {"type": "string"},
        "category": {"type": "string"},
        "url": {"type": "string"},
        "snippet": {"type": "string", "description": "HTML échappé, mots trouvés en <mark>"},
        "score": {"type": "number"},
    },
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "kb — API du centre d'assistance",
        "version": "1",
        "description": "Recherche et lecture des articles. Toute erreur a la forme Error.",
    },
    "paths": {
        "/api/search": {
            "get": {
                "summary": "Rechercher des articles",
                "parameters": [
                    _param(
                        "q",
                        {"type": "string", "maxLength": MAX_QUERY_CHARS},
                        "La recherche, en texte libre",
                        required=True,
                    ),
                    _param("category", {"type": "string"}, "Slug d'une catégorie"),
                    _param("page", {"type": "integer", "minimum": 1, "maximum": 1000}, "Page"),
                    _param(
                        "per_page",
                        {"type": "integer", "minimum": 1, "maximum": PER_PAGE_MAX},
                        "Résultats par page",
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "Résultats classés",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/SearchResults"}
                            }
                        },
                    },
                    "400": _ERROR,
                },
            }
        },
        "/api/suggest": {
            "get": {
                "summary": "Titres d'articles pour compléter la saisie",
                "parameters": [
                    _param(
                        "q",
                        {"type": "string", "maxLength": MAX_QUERY_CHARS},
                        "La saisie",
                        required=True,
                    ),
                    _param(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": SUGGEST_MAX},
                        "Nombre de titres",
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "Suggestions",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Suggestions"}
                            }
                        },
                    },
                    "400": _ERROR,
                },
            }
        },
        "/api/uploads": {
            "options": {
                "summary": "Capacités tus (version, extensions, taille maximale)",
                "responses": {"204": {"description": "En-têtes Tus-Version, Tus-Extension…"}},
            },
            "post": {
                "summary": "Créer un envoi reprenable (tus 1.0, extension creation)",
                "description": "Réservé à un compte connecté (cookie de session).",
                "parameters": [
                    _TUS,
                    _CSRF,
                    _header("Upload-Length", {"type": "integer", "minimum": 0}, "Taille"),
                    _header(
                        "Upload-Metadata",
                        {"type": "string"},
                        "filename, filetype en base64",
                        required=False,
                    ),
                ],
                "responses": {
                    "201": {"description": "Créé : en-tête Location"},
                    "413": _ERROR,
                    **_TUS_ERRORS,
                },
            },
        },
        "/api/uploads/{upload_id}": {
            "parameters": [
                {"name": "upload_id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "head": {
                "summary": "Où en est l'envoi (Upload-Offset)",
                "parameters": [_TUS],
                "responses": {
                    "200": {"description": "Upload-Offset, Upload-Length"},
                    **_TUS_ERRORS,
                },
            },
            "patch": {
                "summary": "Ajouter des octets à la position Upload-Offset",
                "parameters": [
                    _TUS,
                    _CSRF,
                    _header("Upload-Offset", {"type": "integer", "minimum": 0}, "Position"),
                    _header(
                        "Upload-Checksum",
                        {"type": "string"},
                        "« sha1 <base64> » du morceau",
                        required=False,
                    ),
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/offset+octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                },
                "responses": {
                    "204": {"description": "Nouvel Upload-Offset"},
                    "409": _ERROR,
                    "415": _ERROR,
                    "423": _ERROR,
                    "460": _ERROR,
                    **_TUS_ERRORS,
                },
            },
            "delete": {
                "summary": "Annuler l'envoi (extension termination)",
                "parameters": [_TUS, _CSRF],
                "responses": {"204": {"description": "Annulé"}, **_TUS_ERRORS},
            },
            "options": {
                "summary": "Capacités tus",
                "responses": {"204": {"description": "En-têtes tus"}},
            },
        },
        "/api/articles/{slug}": {
            "get": {
                "summary": "Lire un article",
                "parameters": [
                    {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {
                        "description": "L'article",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Article"}}
                        },
                    },
                    "301": {"description": "Ancienne adresse : redirection vers la nouvelle"},
                    "404": _ERROR,
                },
            }
        },
    },
    "components": {
        "schemas": {
            "Hit": _HIT,
            "SearchResults": {
                "type": "object",
                "required": ["query", "total", "page", "per_page", "results", "facets"],
                "properties": {
                    "query": {"type": "string"},
                    "total": {"type": "integer"},
                    "page": {"type": "integer"},
                    "per_page": {"type": "integer"},
                    "results": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}},
                    "facets": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "suggestion": {"type": ["string", "null"]},
                },
            },
            "Suggestions": {
                "type": "object",
                "required": ["query", "suggestions"],
                "properties": {
                    "query": {"type": "string"},
                    "suggestions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "slug": {"type": "string"},
                                "title": {"type": "string"},
                                "url": {"type": "string"},
                                "category": {"type": "string"},
                            },
                        },
                    },
                },
            },
            "Article": {
                "type": "object",
                "required": ["slug", "title", "category", "url", "html"],
                "properties": {
                    "slug": {"type": "string"},
                    "title": {"type": "string"},
                    "category": {"type": "string"},
                    "url": {"type": "string"},
                    "summary": {"type": "string"},
                    "updated": {"type": ["string", "null"], "format": "date"},
                    "html": {"type": "string"},
                    "headings": {"type": "array", "items": {"type": "object"}},
                    "related": {"type": "array", "items": {"type": "string"}},
                },
            },
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["status", "code", "message"],
                        "properties": {
                            "status": {"type": "integer"},
                            "code": {"type": "string"},
                            "message": {"type": "string", "description": "En français"},
                        },
                    }
                },
            },
        },
        "responses": {
            "Error": {
                "description": "Erreur",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        },
    },
}
