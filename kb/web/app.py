"""create_app(settings): the one way to build the help center, for the CLI, tests and uvicorn."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import sqlalchemy as sa
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp

from kb import db
from kb.config import Settings
from kb.errors import KbError
from kb.helpdesk import auth as auth_domain
from kb.helpdesk import satisfaction
from kb.helpdesk.attachments import Store
from kb.helpdesk.business_hours import AnswerDelay
from kb.helpdesk.mail import Mailer
from kb.helpdesk.uploads import Uploads
from kb.insights.usage import Usage, frequent_questions
from kb.knowledge import canned
from kb.knowledge.search import SearchIndex
from kb.web import (
    admin,
    api,
    auth,
    forms,
    intake,
    metrics,
    pages,
    preview,
    ratings,
    support,
    tickets,
    uploads,
    workspace,
)
from kb.web.assets import StaticFiles
from kb.web.compression import Compression
from kb.web.errors import handle_error
from kb.web.formatting import french_date, linkify
from kb.web.garbage import SETTLE_SECONDS, Garbage
from kb.web.limits import BodyLimits, BodyPolicy
from kb.web.pages import NEW_TICKET_URL, TICKETS_URL
from kb.web.request_log import RequestLog
from kb.web.security import CSRF_FIELD, LastResort, SecurityMiddleware
from kb.web.services import Frequent, Services, bind

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def templates_dir(package: Path = PACKAGE_DIR) -> Path:
    """kb/templates in an installed wheel; the checkout's top-level templates/ otherwise."""
    installed = package / "templates"
    return installed if installed.is_dir() else package.parent / "templates"


TEMPLATES_DIR = templates_dir()
FLUSH_SECONDS = 5.0
ADMIN_IMPORT_BYTES = 16 * 1024 * 1024  # a CSV of every establishment of a large academy
FREQUENT_SECONDS = 60.0
SWEEP_SECONDS = 600.0

log = logging.getLogger("kb")


def create_app(settings: Settings, *, background: bool = True) -> Starlette:
    """The help center for these settings; `background` (a serving process) runs the usage
    flush and rankings, and sets what startup built aside from garbage collection."""
    index = SearchIndex(settings.index_dir)
    engine = db.make_engine(settings)
    measured = metrics.Metrics(settings.metrics_allow)
    static = StaticFiles()
    frequent = Frequent()
    preview_state = preview.Preview() if settings.live_reload else None
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals.update(static=static.url, site_name=settings.site_name)
    environment.filters["date_fr"] = french_date
    environment.filters["linkify"] = linkify

    def page_context(request: Request) -> dict[str, Any]:
        """What every page, error pages included, is rendered with."""
        try:
            categories = index.snapshot().categories
        except KbError:  # no index yet: the error page still renders, without the menu
            categories = []
        return {
            "categories": categories,
            "csrf_field": CSRF_FIELD,
            "csrf_token": getattr(request.state, "csrf", ""),
            "account": getattr(request.state, "account", None),
            "preview": preview_state,
            "tickets_url": TICKETS_URL,
            "new_ticket_url": NEW_TICKET_URL,
            "frequent": frequent.questions,
        }

    services = Services(
        settings=settings,
        index=index,
        engine=engine,
        usage=Usage(engine, enabled=not settings.live_reload),  # the preview is not read
        templates=Jinja2Templates(env=environment),
        mailer=Mailer(settings),
        store=Store(settings.data_dir),
        uploads=Uploads(
            engine,
            settings.data_dir,
            limit=settings.max_upload_bytes,
            expiry_hours=settings.upload_expiry_hours,
            max_unfinished=settings.max_unfinished_uploads,
            max_unfinished_bytes=settings.max_unfinished_bytes,
        ),
        secret_key=auth_domain.secret_key(settings),
        answer_delay=AnswerDelay(settings.answer_hours, settings.holiday_calendar),
        frequent=frequent,
        canned=canned.Library(settings.content_dir),
        metrics=measured,
        page_context=page_context,
        preview=preview_state,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(db.upgrade, engine)
        await sweep_uploads(services)
        removed = await anyio.to_thread.run_sync(
            services.store.remove_leftovers, lambda names: _attached(engine, names)
        )
        if removed:
            log.warning(
                "attachments: %d unfinished upload(s) from a stopped process removed", removed
            )
        await refresh_frequent(services)
        garbage = Garbage()
        if background:  # a serving process: what every request uses is in place now
            garbage.start()
        async with anyio.create_task_group() as tasks:
            if preview_state is not None:
                tasks.start_soon(preview.watch, services, TEMPLATES_DIR)
            if background:
                tasks.start_soon(_every, FLUSH_SECONDS, lambda: flush_usage(services))
                tasks.start_soon(_every, SETTLE_SECONDS, _sync(garbage.settle))
                tasks.start_soon(_every, SWEEP_SECONDS, lambda: sweep_uploads(services))
                tasks.start_soon(_every, SWEEP_SECONDS, lambda: close_resolved(services))
                tasks.start_soon(_every, FREQUENT_SECONDS, lambda: refresh_frequent(services))
            yield
            tasks.cancel_scope.cancel()
        await flush_usage(services)
        engine.dispose()
        measured.close()

    # Starlette tries the routes in order: the busiest first (search as you type, then the
    # pages). No two of them match the same path, so the order changes nothing else. With
    # /api/search 29th, a kept answer took 89 µs of the ASGI stack (the ceiling's: 40); with
    # this and the other changes of bench/README.md's HTTP section, 45 µs.
    routes = [
        *api.routes(services),
        *pages.routes(services),
        *auth.routes(services),
        *tickets.routes(services),
        *ratings.routes(services),
        *intake.routes(services),  # before support: /support/tickets/nouveau
        *support.routes(services),
        *workspace.routes(services),
        *admin.routes(services),
        *preview.routes(services),
        *uploads.routes(services),
        Route("/static/{name:path}", static.serve, name="static"),
        Route("/healthz", bind(services, healthz), name="healthz"),
        *metrics.routes(services),
    ]
    on_error = functools.partial(handle_error, services)
    # Bodies larger than a form go only where files go; tus checks each PATCH against the
    # length its upload announced, never above the per-message limit.
    with_files = settings.max_upload_bytes + forms.MULTIPART_SLACK
    body_policy = BodyPolicy.for_routes(
        routes,
        {"tickets": with_files, "ticket_reply": with_files, "support_reply": with_files,
         "support_create_ticket": with_files, "upload": settings.max_upload_bytes,
         "admin_import": ADMIN_IMPORT_BYTES},
    )  # fmt: skip
    app = HelpCenter(
        # Outside Starlette's error middleware: a 500 is logged, timed and given the headers.
        outer=[
            Middleware(RequestLog, metrics=measured),
            Middleware(SecurityMiddleware, secure_cookies=settings.secure_cookies),
        ],
        routes=routes,
        middleware=[
            Middleware(BodyLimits, policy=body_policy, refuse=on_error),
            Middleware(auth.SessionMiddleware, services=services),
            Middleware(Compression),
        ],
        exception_handlers={
            KbError: on_error,
            HTTPException: on_error,
            ClientDisconnect: on_error,
            Exception: on_error,
        },
        lifespan=lifespan,
    )
    app.state.services = services  # for tests and tools only: routes get it passed
    app.state.body_policy = body_policy  # for tests: shorter clocks
    return app


class HelpCenter(Starlette):
    """Starlette, with `outer` middleware (the request log, the security headers) outside its
    error middleware: a 500 carries the headers and its log line too, and an unexpected error
    does not cost the client its connection."""

    def __init__(self, *, outer: Sequence[Middleware], **options: Any) -> None:
        self.outer = list(outer)
        super().__init__(**options)

    def build_middleware_stack(self) -> ASGIApp:
        app: ASGIApp = LastResort(super().build_middleware_stack())
        for cls, args, kwargs in reversed(self.outer):
            app = cls(app, *args, **kwargs)
        return app


def create_app_from_env() -> Starlette:
    """For uvicorn's workers and reloader: the settings come from KB_* variables."""
    return create_app(Settings.from_env(writable_data_dir=True))


def _sync(job: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    """A quick job run in the event loop itself, between requests."""

    async def run() -> None:
        job()

    return run


async def _every(seconds: float, job: Any) -> None:
    while True:
        await anyio.sleep(seconds)
        await job()


async def flush_usage(services: Services) -> None:
    try:
        await anyio.to_thread.run_sync(services.usage.flush)
    except Exception:  # the counts are kept for the next try; the pages keep serving
        log.exception("usage: flush failed, will retry")


async def close_resolved(services: Services) -> None:
    """Resolved tickets not reopened within KB_CLOSE_AFTER_DAYS business days are closed."""
    settings = services.settings
    try:
        closed = await anyio.to_thread.run_sync(
            satisfaction.close_resolved,
            services.engine, settings.close_after_days, settings.holiday_calendar,
        )  # fmt: skip
        if closed:
            log.info("tickets: %d resolved ticket(s) closed", len(closed))
    except Exception:
        log.exception("tickets: closing resolved tickets failed, will retry")


async def sweep_uploads(services: Services) -> None:
    """Unfinished uploads past their expiry go, with their bytes."""
    try:
        removed = await anyio.to_thread.run_sync(services.uploads.sweep)
        if removed:
            log.info("uploads: %d expired upload(s) removed", removed)
    except Exception:
        log.exception("uploads: sweep failed, will retry")


async def refresh_frequent(services: Services) -> None:
    """Recompute the frequent questions in the background: never per request."""
    try:
        snapshot = services.snapshot()
        services.frequent.questions = await anyio.to_thread.run_sync(
            frequent_questions, services.engine, snapshot.listing
        )
    except Exception:
        log.exception("frequent questions: refresh failed, keeping the previous ones")


def _attached(engine: Any, names: list[str]) -> set[str]:
    """Which of these stored files committed attachment rows name."""
    column, found = db.attachments.c.stored_as, set[str]()
    with engine.connect() as connection:
        for start in range(0, len(names), 500):
            query = sa.select(column).where(column.in_(names[start : start + 500]))
            found.update(connection.execute(query).scalars())
    return found


async def healthz(services: Services, request: Request) -> Response:
    body: dict[str, Any] = {"status": "ok"}
    status = 200
    try:
        body["index"] = services.snapshot().generation.name
    except KbError:
        body["index"] = None
        body["status"], status = "degraded", 503
    try:
        await anyio.to_thread.run_sync(_ping, services.engine)
        body["database"] = "ok"
    except Exception:
        body["database"] = "unavailable"
        body["status"], status = "degraded", 503
    return JSONResponse(body, status_code=status, headers={"cache-control": "no-store"})


def _ping(engine: Any) -> None:
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))
