"""create_app(settings): the one way to build the help center, for the CLI, tests and uvicorn."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp

from kb import db
from kb.config import Settings
from kb.errors import KbError
from kb.helpdesk import auth as auth_domain
from kb.helpdesk.attachments import StorageFull, Store, no_space_left
from kb.helpdesk.mail import Mailer
from kb.helpdesk.uploads import Uploads
from kb.insights.usage import Usage, frequent_questions
from kb.knowledge.search import SearchIndex
from kb.web import api, auth, pages, preview, support, tickets, uploads
from kb.web.assets import StaticFiles
from kb.web.compression import Compression
from kb.web.formatting import french_date, linkify
from kb.web.garbage import SETTLE_SECONDS, Garbage
from kb.web.limits import BodyLimits, BodyPolicy
from kb.web.security import REDACT_TOKENS, LastResort, SecurityMiddleware, redact

TEMPLATES_DIR = Path(__file__).resolve().parent.parent.parent / "templates"
FLUSH_SECONDS = 5.0
FREQUENT_SECONDS = 60.0
SWEEP_SECONDS = 600.0

log = logging.getLogger("kb")

ERROR_TITLES = {
    400: "Requête invalide",
    403: "Accès refusé",
    404: "Page introuvable",
    405: "Méthode non autorisée",
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


def create_app(settings: Settings, *, background: bool = True) -> Starlette:
    """The help center for these settings; `background` (a serving process) runs the usage
    flush and rankings, and sets what startup built aside from garbage collection."""
    index = SearchIndex(settings.index_dir)
    engine = db.make_engine(settings)
    usage = Usage(engine)
    static = StaticFiles()
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals.update(static=static.url, site_name=settings.site_name)
    environment.filters["date_fr"] = french_date
    environment.filters["linkify"] = linkify
    templates = Jinja2Templates(env=environment)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        logging.getLogger("uvicorn.access").addFilter(REDACT_TOKENS)  # once: the same filter
        await anyio.to_thread.run_sync(db.upgrade, engine)
        await sweep_uploads(app)
        removed = await anyio.to_thread.run_sync(
            app.state.store.remove_leftovers, lambda names: _attached(engine, names)
        )
        if removed:
            log.warning(
                "attachments: %d unfinished upload(s) from a stopped process removed", removed
            )
        await refresh_frequent(app)
        garbage = Garbage()
        if background:  # a serving process: what every request uses is in place now
            garbage.start()
        async with anyio.create_task_group() as tasks:
            if settings.live_reload:
                tasks.start_soon(preview.watch, app, TEMPLATES_DIR)
            if background:
                tasks.start_soon(_every, FLUSH_SECONDS, lambda: flush_usage(app))
                tasks.start_soon(_every, SETTLE_SECONDS, _sync(garbage.settle))
                tasks.start_soon(_every, SWEEP_SECONDS, lambda: sweep_uploads(app))
                tasks.start_soon(_every, FREQUENT_SECONDS, lambda: refresh_frequent(app))
            yield
            tasks.cancel_scope.cancel()
        await flush_usage(app)
        engine.dispose()

    # Starlette tries the routes in order: the busiest first (search as you type, then the
    # pages). No two of them match the same path, so the order changes nothing else.
    routes = [
        *api.routes(),
        *pages.routes(),
        *auth.routes(),
        *tickets.routes(),
        *support.routes(),
        *preview.routes(),
        *uploads.routes(),
        Route("/static/{name:path}", static.serve, name="static"),
        Route("/healthz", healthz, name="healthz"),
    ]
    # Bodies larger than a form go only where files go; tus checks each PATCH against the
    # length its upload announced, never above the per-message limit.
    with_files = settings.max_upload_bytes + tickets.MULTIPART_SLACK
    body_policy = BodyPolicy.for_routes(
        routes,
        {"tickets": with_files, "ticket_reply": with_files, "support_reply": with_files,
         "upload": settings.max_upload_bytes},
    )  # fmt: skip
    app = HelpCenter(
        routes=routes,
        middleware=[
            Middleware(BodyLimits, policy=body_policy, refuse=handle_error),
            Middleware(auth.SessionMiddleware),
            Middleware(Compression),
        ],
        exception_handlers={
            KbError: handle_error,
            HTTPException: handle_error,
            ClientDisconnect: handle_error,
            Exception: handle_error,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.body_policy = body_policy
    app.state.index = index
    app.state.engine = engine
    app.state.usage = usage
    app.state.templates = templates
    app.state.mailer = Mailer(settings)
    app.state.store = Store(settings.data_dir)
    app.state.uploads = Uploads(
        engine, settings.data_dir, limit=settings.max_upload_bytes,
        expiry_hours=settings.upload_expiry_hours, max_unfinished=settings.max_unfinished_uploads,
        max_unfinished_bytes=settings.max_unfinished_bytes,
    )  # fmt: skip
    app.state.preview = preview.Preview() if settings.live_reload else None
    app.state.secret_key = auth_domain.secret_key(settings)
    app.state.frequent = []
    return app


class HelpCenter(Starlette):
    """Starlette, with the security headers outside its error middleware: a 500 carries them
    too, and an unexpected error does not cost the client its connection."""

    def build_middleware_stack(self) -> ASGIApp:
        secure = self.state.settings.secure_cookies
        return SecurityMiddleware(LastResort(super().build_middleware_stack()), secure)


def create_app_from_env() -> Starlette:
    """For uvicorn's workers and reloader: the settings come from KB_* variables."""
    return create_app(Settings.from_env())


def _sync(job: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    """A quick job run in the event loop itself, between requests."""

    async def run() -> None:
        job()

    return run


async def _every(seconds: float, job: Any) -> None:
    while True:
        await anyio.sleep(seconds)
        await job()


async def flush_usage(app: Starlette) -> None:
    try:
        await anyio.to_thread.run_sync(app.state.usage.flush)
    except Exception:  # the counts are kept for the next try; the pages keep serving
        log.exception("usage: flush failed, will retry")


async def sweep_uploads(app: Starlette) -> None:
    """Unfinished uploads past their expiry go, with their bytes."""
    try:
        removed = await anyio.to_thread.run_sync(app.state.uploads.sweep)
        if removed:
            log.info("uploads: %d expired upload(s) removed", removed)
    except Exception:
        log.exception("uploads: sweep failed, will retry")


async def refresh_frequent(app: Starlette) -> None:
    """Recompute the frequent questions in the background: never per request."""
    try:
        snapshot = app.state.index.snapshot()
        app.state.frequent = await anyio.to_thread.run_sync(
            frequent_questions, app.state.engine, snapshot.listing
        )
    except Exception:
        log.exception("frequent questions: refresh failed, keeping the previous ones")


def _attached(engine: Any, names: list[str]) -> set[str]:
    """Which of these stored files committed attachment rows name."""
    import sqlalchemy as sa

    column, found = db.attachments.c.stored_as, set[str]()
    with engine.connect() as connection:
        for start in range(0, len(names), 500):
            query = sa.select(column).where(column.in_(names[start : start + 500]))
            found.update(connection.execute(query).scalars())
    return found


async def healthz(request: Request) -> Response:
    state = request.app.state
    body: dict[str, Any] = {"status": "ok"}
    status = 200
    try:
        body["index"] = state.index.snapshot().generation.name
    except KbError:
        body["index"] = None
        body["status"], status = "degraded", 503
    try:
        await anyio.to_thread.run_sync(_ping, state.engine)
        body["database"] = "ok"
    except Exception:
        body["database"] = "unavailable"
        body["status"], status = "degraded", 503
    return JSONResponse(body, status_code=status, headers={"cache-control": "no-store"})


def _ping(engine: Any) -> None:
    import sqlalchemy as sa

    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.headers.get("accept", "").startswith(
        "application/json"
    )


async def handle_error(request: Request, exc: Exception) -> Response:
    """One handler: a French page in the site's layout, or one JSON error shape."""
    if isinstance(exc, ClientDisconnect):  # nobody is left to read an answer
        log.info("client left during %s %s", request.method, redact(request.url.path))
        return Response(status_code=400)
    if isinstance(exc, KbError):
        status, code, message = exc.status, exc.code, exc.message
    elif isinstance(exc, HTTPException):
        status, code = exc.status_code, _code_for(exc.status_code)
        message = ERROR_MESSAGES.get(status, ERROR_TITLES.get(status, "Erreur."))
    elif _database_unavailable(exc):  # it comes back by itself: the pool reconnects
        reason = (str(getattr(exc, "orig", exc)).strip().splitlines() or [""])[0]
        log.warning("database unavailable on %s: %s", redact(request.url.path), reason)
        status, code, message = 503, db.DatabaseUnavailable.code, db.DATABASE_DOWN
    elif no_space_left(exc):
        log.error("disk full on %s: %s", redact(request.url.path), exc)
        status, code, message = 507, StorageFull.code, DISK_FULL
    else:
        log.exception("unexpected error on %s", redact(request.url.path), exc_info=exc)
        status, code, message = 500, "erreur_serveur", ERROR_MESSAGES[500]
    headers = {"cache-control": "no-store"}
    if wants_json(request):
        error = {"status": status, "code": code, "message": message}
        return JSONResponse({"error": error}, status_code=status, headers=headers)
    templates: Jinja2Templates = request.app.state.templates
    context = {
        "status": status,
        "title": ERROR_TITLES.get(status, "Erreur"),
        "message": message,
        "frequent": request.app.state.frequent,
        "account": getattr(request.state, "account", None),
        "csrf_token": getattr(request.state, "csrf", ""),
        "tickets_url": "/tickets",
    }
    try:
        return templates.TemplateResponse(
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
    import sqlalchemy as sa

    unavailable = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)
    return isinstance(exc, unavailable) or bool(
        isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated
    )


def _code_for(status: int) -> str:
    return {400: "requete_invalide", 404: "introuvable", 405: "methode_non_autorisee"}.get(
        status, "erreur"
    )
