"""The support console (agents) and the editors' report (editors and agents)."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from kb import clock
from kb.errors import BadRequest, KbError
from kb.helpdesk import notifications, support, tickets
from kb.helpdesk.accounts import Account
from kb.helpdesk.attachments import ReceivedForm, UploadTooLarge
from kb.helpdesk.business_hours import short
from kb.insights import report
from kb.web import forms
from kb.web.auth import login_required
from kb.web.errors import wants_json
from kb.web.params import date_param, id_param, int_param
from kb.web.security import CSRF_FIELD, check_csrf
from kb.web.services import Services, bind
from kb.web.tickets import categories, notify, ticket_context

REPORT_DAYS = 30


class Forbidden(KbError):
    status = 403
    code = "acces_refuse"


def routes(services: Services) -> list[Route]:
    return [
        Route("/support", bind(services, queue), name="support"),
        Route("/support/tickets/{reference}", bind(services, ticket), name="support_ticket"),
        Route(
            "/support/tickets/{reference}/reponses",
            bind(services, reply),
            methods=["POST"],
            name="support_reply",
        ),
        Route("/support/tickets/{reference}/statut", bind(services, status), methods=["POST"]),
        Route("/rapport", bind(services, editors_report), name="report"),
    ]


def roles(*allowed: str) -> Any:
    """Logged in, and with one of these roles; an establishment gets a French 403."""

    def decorate(endpoint: Any) -> Any:
        @functools.wraps(endpoint)
        async def wrapper(services: Services, request: Request) -> Response:
            account: Account = request.state.account
            if account.role not in allowed:
                raise Forbidden("Cette page est réservée à l'équipe d'assistance et aux éditeurs.")
            response: Response = await endpoint(services, request)
            return response

        return login_required(wrapper)

    return decorate


@roles("agent")
async def queue(services: Services, request: Request) -> Response:
    params = request.query_params
    wanted = support.QueueFilter(
        status=params.get("statut", "ouverts"),
        category=params.get("categorie", ""),
        account_id=id_param(request, "etablissement"),
        words=params.get("q", "")[:200],
        page=int_param(request, "page", default=1, low=1, high=10_000),
    )
    found = await anyio.to_thread.run_sync(support.queue, services.engine, wanted)
    return services.render(request, "support_queue.html", queue=found, wanted=wanted,
        overdue=support.is_overdue, **ticket_context(services),
    )  # fmt: skip


async def _support_ticket(services: Services, request: Request) -> tickets.Ticket:
    return await anyio.to_thread.run_sync(
        lambda: tickets.get_for(
            services.engine, request.state.account, request.path_params["reference"],
            internal=True,
        )
    )  # fmt: skip


async def _page(
    services: Services,
    request: Request,
    status: int = 200,
    error: str | None = None,
    message: str = "",
) -> Response:
    found = await _support_ticket(services, request)
    contact = await anyio.to_thread.run_sync(support.contact_of, services.engine, found)
    query = request.query_params.get("article", "").strip()
    articles = []
    if query:
        snapshot = services.index.snapshot()
        articles = snapshot.search(query, per_page=8).hits
    notices = {
        "repondu": "Réponse envoyée : l'établissement est prévenu par e-mail.",
        "note": "Note interne ajoutée : l'établissement ne la voit pas.",
        "statut": "Statut modifié.",
    }
    notice = next((t for k, t in notices.items() if k in request.query_params), None)
    return services.render(
        request, "support_ticket.html", status=status, ticket=found, contact=contact,
        notice=notice, error=error, message=message, article_query=query, articles=articles,
        base_url=str(request.base_url).rstrip("/"), overdue=support.is_overdue,
        **ticket_context(services),
    )  # fmt: skip


@roles("agent")
async def ticket(services: Services, request: Request) -> Response:
    return await _page(services, request)


@roles("agent")
async def reply(services: Services, request: Request) -> Response:
    agent: Account = request.state.account
    found = await _support_ticket(services, request)
    form: ReceivedForm | None = None
    try:
        form = await forms.receive(services, request)
        internal = form.fields.get("interne") == "oui"
        uploaded = await anyio.to_thread.run_sync(forms.uploaded, services, request, form)
        message_id = await anyio.to_thread.run_sync(
            lambda: tickets.reply(
                services.engine, services.store, found, agent, form, internal=internal,
                delay=services.answer_delay, limit=services.settings.max_upload_bytes,
                uploaded=uploaded, upload_paths=forms.upload_paths(services, uploaded),
            )
        )  # fmt: skip
    except (UploadTooLarge, BadRequest) as exc:
        if wants_json(request):
            return await forms.form_error(request, exc, lambda: Response())
        typed = getattr(exc, "fields", None) or (form.fields if form else {})
        return await _page(services, request, exc.status, exc.message, typed.get("message", ""))
    snapshot = services.index.snapshot()
    slugs = support.linked_slugs(
        form.fields.get("message", ""), snapshot.aliases, (a["slug"] for a in snapshot.listing)
    )
    await anyio.to_thread.run_sync(support.record_links, services.engine, message_id, slugs)
    next_status = form.fields.get("statut_apres", "")
    if next_status in tickets.STATUSES and not internal and next_status != "en_attente":
        refreshed = await _support_ticket(services, request)
        await anyio.to_thread.run_sync(
            lambda: tickets.set_status(
                services.engine, refreshed, next_status,
                delay=services.answer_delay,
            )
        )  # fmt: skip
    if not internal:
        owner = await anyio.to_thread.run_sync(_owner, services.engine, found.account_id)
        await notify(
            notifications.send_support_reply,
            services.mailer, services.settings, owner, found.reference, found.subject,
        )  # fmt: skip
    notice = "note" if internal else "repondu"
    url = f"/support/tickets/{found.reference}?{notice}=1#fil"
    if wants_json(request):  # the page's script sent it, with its progress bar
        return JSONResponse({"reference": found.reference, "url": url})
    return RedirectResponse(url, status_code=303)


def _owner(engine: Any, account_id: int) -> Account:
    from kb.helpdesk import accounts

    owner = accounts.get(engine, account_id)
    assert owner is not None  # a ticket's account is never deleted
    return owner


@roles("agent")
async def status(services: Services, request: Request) -> Response:
    found = await _support_ticket(services, request)
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD))
    wanted = form.get("statut")
    if wanted not in tickets.STATUSES:
        raise BadRequest("Choisissez un statut dans la liste.")
    await anyio.to_thread.run_sync(
        lambda: tickets.set_status(
            services.engine, found, str(wanted),
            delay=services.answer_delay,
        )
    )  # fmt: skip
    return RedirectResponse(f"/support/tickets/{found.reference}?statut=1", status_code=303)


@roles("agent", "editeur")
async def editors_report(services: Services, request: Request) -> Response:
    until = date_param(request, "jusqu_au", clock.today())
    since = date_param(request, "depuis", until - dt.timedelta(days=REPORT_DAYS - 1))
    if since > until:
        raise BadRequest("La date de début doit précéder la date de fin.")
    if (until - since).days > 366:
        raise BadRequest("Choisissez une période d'un an au plus.")
    snapshot = services.index.snapshot()
    built = await anyio.to_thread.run_sync(
        lambda: report.build(
            services.engine, snapshot.listing, categories(services), since, until,
            aliases=snapshot.aliases,
        )
    )  # fmt: skip
    return services.render(
        request, "report.html", report=built, chart=report.chart_svg(built.daily), short=short
    )
