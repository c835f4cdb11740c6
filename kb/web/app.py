"""create_app(settings): the one way to build the help center, for the CLI, tests and uvicorn."""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import anyio
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.routing import Route, Router
from starlette.types import ASGIApp

from kb import db, instances, tables
from kb.config import Settings
from kb.errors import KbError
from kb.helpdesk import auth as auth_domain
from kb.helpdesk import notifications, satisfaction
from kb.helpdesk.attachments import Store
from kb.helpdesk.business_hours import AnswerDelay
from kb.helpdesk.mail import Mailer
from kb.helpdesk.outbox import Sender
from kb.helpdesk.uploads import Uploads
from kb.insights import accessibility
from kb.insights.accessibility import STATEMENT_DIR
from kb.insights.usage import Usage, frequent_questions
from kb.instances import Instance
from kb.knowledge import canned
from kb.knowledge.publishing import Publisher
from kb.knowledge.search import IndexMissing, SearchIndex
from kb.web import (
    account,
    admin,
    api,
    auth,
    forms,
    health,
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
from kb.web.garbage import SETTLE_SECONDS, Garbage
from kb.web.limits import BodyLimits, BodyPolicy
from kb.web.outbox_metrics import OutboxCollector
from kb.web.request_log import RequestLog
from kb.web.security import CSRF_FIELD, LastResort, SecurityMiddleware
from kb.web.services import Frequent, Services
from kb.web.sessions import SessionMiddleware
from kb.web.templating import TEMPLATES_DIR, make_templates, templates_dir

__all__ = ["TEMPLATES_DIR", "create_app", "templates_dir"]
# The usage counts are written every second: with every query new, a worker had 4,000 searches
# to write every five seconds, about 100 ms of CPU in a thread that held the interpreter while
# requests waited; bench.http's never-seen mix, two runs of 3 rounds each, taken in turn
# (4 December): p99 188 124 128, 200 350 140 ms written every 5 s; 95 93 83, 85 87 157 ms
# every second, for the same throughput. Nothing pending, nothing is written.
FLUSH_SECONDS = 1.0
# Between two slices of that write's work (kb/insights/usage.py, SLICE), the requests have the
# interpreter to themselves this long: a second's 2,500 never-seen searches are written in about
# a third of a second beside the requests, a millisecond of Python at a time, instead of a
# tenth of a second taken in turns of up to 5 ms (bench/README.md).
FLUSH_PAUSE_SECONDS = 0.005
ADMIN_IMPORT_BYTES = 16 * 1024 * 1024  # a CSV of every establishment of a large academy
FREQUENT_SECONDS = 60.0
SWEEP_SECONDS = 600.0
MAIL_SECONDS = 2.0

log = logging.getLogger("kb")


def create_app(settings: Settings, *, background: bool = True) -> Starlette:
    """The help center for these settings; `background` (a serving process) runs the usage
    flush and rankings, and sets what startup built aside from garbage collection."""
    index = SearchIndex(settings.index_dir)
    engine = db.make_engine(settings)
    measured = metrics.Metrics(settings.metrics_allow, collectors=(OutboxCollector(engine),))
    static = StaticFiles()
    frequent = Frequent()
    instance = Instance(engine, settings.lease_seconds)  # owner of its files and mail claims
    mailer = Mailer(settings)
    preview_state = preview.Preview() if settings.live_reload else None
    router = Router()  # the routes below, once built: mails name their pages by route

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
            "frequent": frequent.questions,
        }

    services = Services(
        settings=settings,
        index=index,
        engine=engine,
        usage=Usage(engine, enabled=not settings.live_reload),  # the preview is not read
        templates=make_templates(
            settings, static.url, router.url_path_for, accessibility.load(STATEMENT_DIR)
        ),
        mailer=mailer,
        mail_sender=Sender(engine, mailer, settings, instance.id),
        publisher=Publisher(settings.content_dir, settings.index_dir),
        instance=instance,
        store=Store(settings.data_dir, owner=instance.id),
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
        links=notifications.Links(settings, router.url_path_for),
        preview=preview_state,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(db.upgrade, engine)
        await anyio.to_thread.run_sync(instance.renew)
        await remove_leftovers(services)
        await sweep_uploads(services)
        await refresh_frequent(services)
        garbage = Garbage()
        if background:  # a serving process: what every request uses is in place now
            garbage.start()
        async with anyio.create_task_group() as tasks:
            if preview_state is not None:
                tasks.start_soon(preview.watch, services, TEMPLATES_DIR)
            if background:
                # A new replica listens at once and is ready when its first build is done; a
                # running one serves the previous generation while it builds the next.
                tasks.start_soon(publish, services)
                if settings.content_check_seconds and preview_state is None:
                    check = settings.content_check_seconds
                    tasks.start_soon(_every, check, lambda: publish(services))
                tasks.start_soon(_every, FLUSH_SECONDS, lambda: flush_usage(services, paced=True))
                tasks.start_soon(_every, SETTLE_SECONDS, _sync(garbage.settle))
                tasks.start_soon(_every, SWEEP_SECONDS, lambda: sweep_uploads(services))
                tasks.start_soon(_every, SWEEP_SECONDS, lambda: close_resolved(services))
                tasks.start_soon(_every, FREQUENT_SECONDS, lambda: refresh_frequent(services))
                tasks.start_soon(_every, MAIL_SECONDS, lambda: send_mail(services))
            tasks.start_soon(_every, instance.renew_seconds, lambda: renew_lease(services))
            tasks.start_soon(_every, instance.renew_seconds * 2, lambda: remove_leftovers(services))
            yield
            services.mail_sender.stop()
            tasks.cancel_scope.cancel()
        await flush_usage(services)
        with contextlib.suppress(Exception):  # the lease ends by itself if the database is down
            await anyio.to_thread.run_sync(instance.retire)
        engine.dispose()
        measured.close()

    # Starlette tries the routes in order: the API (search as you type, most of the traffic)
    # first, then the pages. No two match the same path, so the order changes nothing else.
    # Its share was not measured alone: with /api/search 29th, a kept answer took 89 µs of the
    # ASGI stack, and 45 µs with this and three other changes (28 November; the ceiling: 40).
    # bench.http on 2 December, realistic mix, load 6 to 10: 0.55-0.71 ms of server CPU a
    # request in this order, 0.51-0.66 with the API last: within that machine's noise.
    routes = [
        *api.routes(services),
        *pages.routes(services),
        *auth.routes(services),
        *account.routes(services),
        *tickets.routes(services),
        *ratings.routes(services),
        *intake.routes(services),  # before support: /support/tickets/nouveau
        *support.routes(services),
        *workspace.routes(services),
        *admin.routes(services),
        *preview.routes(services),
        *uploads.routes(services),
        Route("/static/{name:path}", static.serve, name="static"),
        *health.routes(services),
        *metrics.routes(services),
    ]
    router.routes.extend(routes)
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
            Middleware(SessionMiddleware, services=services),
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


async def flush_usage(services: Services, paced: bool = False) -> None:
    """The usage counts written; `paced`, beside requests (the last write, on stopping, is not)."""
    pause = _let_requests_run if paced else None
    try:
        await anyio.to_thread.run_sync(lambda: services.usage.flush(pause))
    except Exception:  # the counts are kept for the next try; the pages keep serving
        log.exception("usage: flush failed, will retry")


def _let_requests_run() -> None:
    time.sleep(FLUSH_PAUSE_SECONDS)


async def renew_lease(services: Services) -> None:
    try:
        await anyio.to_thread.run_sync(services.instance.renew)
    except Exception as exc:  # renewed four times per lease: a short outage costs nothing
        log.warning("instance: lease not renewed: %s", exc)


async def remove_leftovers(services: Services) -> None:
    """What stopped processes (on any host, in any container) left: once their lease ended."""
    engine = services.engine
    try:
        live = await anyio.to_thread.run_sync(instances.alive, engine)
        removed = await anyio.to_thread.run_sync(
            lambda: services.store.remove_leftovers(
                lambda names: _attached(engine, names), live, services.settings.lease_seconds
            )
        )
        if removed:
            log.warning("attachments: %d upload(s) left by a stopped process removed", removed)
    except Exception:
        log.exception("attachments: leftovers not removed, will retry")


async def close_resolved(services: Services) -> None:
    """Resolved tickets not reopened within KB_CLOSE_AFTER_DAYS business days are closed."""
    settings = services.settings

    def notice(connection: sa.Connection, ticket_id: int) -> None:
        notifications.queue_closed(
            connection, settings, services.links, services.secret_key, ticket_id
        )

    try:
        closed = await anyio.to_thread.run_sync(
            satisfaction.close_resolved,
            services.engine, settings.close_after_days, settings.holiday_calendar, notice,
        )  # fmt: skip
        if closed:
            log.info("tickets: %d resolved ticket(s) closed", len(closed))
    except Exception:
        log.exception("tickets: closing resolved tickets failed, will retry")


async def sweep_uploads(services: Services) -> None:
    """Unfinished uploads past their expiry go, with their bytes; sent mails after a month."""
    try:
        removed = await anyio.to_thread.run_sync(services.uploads.sweep)
        if removed:
            log.info("uploads: %d expired upload(s) removed", removed)
        await anyio.to_thread.run_sync(services.mail_sender.purge)
    except Exception:
        log.exception("uploads: sweep failed, will retry")


async def publish(services: Services) -> None:
    """A new content version becomes a new generation, built in the background."""
    try:
        # Abandoned on shutdown: a stopping replica does not wait for a build to finish (the
        # next start builds again; an unfinished generation is never made live).
        generation = await anyio.to_thread.run_sync(
            services.publisher.check, abandon_on_cancel=True
        )
    except Exception:
        log.exception("content: check failed, will retry")
        return
    if generation:
        await refresh_frequent(services)


async def send_mail(services: Services) -> None:
    """The outbox's sender: what requests queued leaves here, never in the request."""
    try:
        # Abandoned on shutdown (after `stop`): the mail being sent finishes or is sent again
        # by another replica, with the same Message-ID.
        await anyio.to_thread.run_sync(services.mail_sender.deliver, abandon_on_cancel=True)
    except Exception:
        log.exception("mail: sender failed, will retry")


async def refresh_frequent(services: Services) -> None:
    """Recompute the frequent questions in the background: never per request."""
    try:
        snapshot = services.snapshot()
    except IndexMissing:  # a new replica's first build: refreshed when it is done
        return
    except KbError as exc:  # a damaged index: pages say so; a repair refreshes them
        log.warning("frequent questions: no usable index: %s", exc.message)
        return
    try:
        services.frequent.questions = await anyio.to_thread.run_sync(
            frequent_questions, services.engine, snapshot.listing
        )
    except Exception:
        log.exception("frequent questions: refresh failed, keeping the previous ones")


def _attached(engine: Any, names: list[str]) -> set[str]:
    """Which of these stored files committed attachment rows name."""
    column, found = tables.attachments.c.stored_as, set[str]()
    with engine.connect() as connection:
        for start in range(0, len(names), 500):
            query = sa.select(column).where(column.in_(names[start : start + 500]))
            found.update(connection.execute(query).scalars())
    return found
