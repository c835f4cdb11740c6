"""One error path for the web: a French page in the site's layout, or one JSON error shape."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from kb import db
from kb.errors import KbError
from kb.helpdesk.attachments import StorageFull, no_space_left
from kb.helpdesk.tickets import TicketInvalid
from kb.web.formatting import error_text
from kb.web.services import Services

log = logging.getLogger("kb")

ERROR_TITLES = {
    400: "Requête invalide",
    403: "Accès refusé",
    404: "Page introuvable",
    405: "Méthode non autorisée",
    410: "Fichier indisponible",
    413: "Envoi trop volumineux",
    500: "Erreur du serveur",
    503: "Service momentanément indisponible",
    507: "Espace de stockage insuffisant",
}
ERROR_MESSAGES = {
    404: "La page demandée n'existe pas ou a été déplacée.",
    405: "Cette adresse ne s'utilise pas de cette façon.",
    500: "Une erreur inattendue s'est produite. Réessayez dans quelques instants.",
}
DISK_FULL = "Plus assez d'espace disque sur le serveur. Réessayez plus tard."


def wants_json(request: Request) -> bool:
    """The API, and the pages' scripts (which ask for JSON), get the JSON shape."""
    return request.url.path.startswith("/api/") or request.headers.get("accept", "").startswith(
        "application/json"
    )


def error_json(
    status: int,
    code: str,
    message: str,
    *,
    fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The one JSON error shape: {"error": {"status", "code", "message"[, "fields"]}}."""
    error: dict[str, Any] = {"status": status, "code": code, "message": message}
    if fields:
        error["fields"] = fields
    return JSONResponse({"error": error}, status_code=status, headers=headers)


async def handle_error(services: Services, request: Request, exc: Exception) -> Response:
    """One handler: a French page in the site's layout, or one JSON error shape."""
    if isinstance(exc, ClientDisconnect):  # nobody is left to read an answer
        log.info("client left during %s %s", request.method, request.url.path)
        return Response(status_code=400)
    if isinstance(exc, KbError):
        status, code, message = exc.status, exc.code, error_text(exc)
    elif isinstance(exc, HTTPException):
        status, code = exc.status_code, _code_for(exc.status_code)
        message = ERROR_MESSAGES.get(status, ERROR_TITLES.get(status, "Erreur."))
    elif _database_unavailable(exc):  # it comes back by itself: the pool reconnects
        reason = (str(getattr(exc, "orig", exc)).strip().splitlines() or [""])[0]
        log.warning("database unavailable on %s: %s", request.url.path, reason)
        status, code, message = 503, db.DatabaseUnavailable.code, db.DATABASE_DOWN
    elif no_space_left(exc):
        log.error("disk full on %s: %s", request.url.path, exc)
        status, code, message = 507, StorageFull.code, DISK_FULL
    else:
        log.exception("unexpected error on %s", request.url.path, exc_info=exc)
        status, code, message = 500, "erreur_serveur", ERROR_MESSAGES[500]
    headers = {"cache-control": "no-store"}
    if wants_json(request):
        fields = exc.errors if isinstance(exc, TicketInvalid) else None
        return error_json(status, code, message, fields=fields, headers=headers)
    context = {"status": status, "title": ERROR_TITLES.get(status, "Erreur"), "message": message}
    try:
        # `status` is also a variable of the template: not through render()'s own argument.
        context = {**services.page_context(request), **context}
        return services.templates.TemplateResponse(
            request, "error.html", context, status_code=status, headers=headers
        )
    except Exception:  # the error page itself failed: plain words, still in French
        log.exception("error page failed")
        return HTMLResponse(
            f"<!doctype html><html lang=fr><title>Erreur</title><p>{message}</p>",
            status_code=status,
            headers=headers,
        )


def _database_unavailable(exc: Exception) -> bool:
    """The database refused, dropped or timed out a connection: not a bug of kb's."""
    unavailable = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)
    return isinstance(exc, unavailable) or bool(
        isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated
    )


def _code_for(status: int) -> str:
    return {400: "requete_invalide", 404: "introuvable", 405: "methode_non_autorisee"}.get(
        status, "erreur"
    )
