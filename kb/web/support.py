"""The support console (agents) and the editors' report (editors and agents)."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from kb import clock
from kb.clock import short
from kb.errors import BadRequest, KbError
from kb.helpdesk import (
    assignment,
    notifications,
    outbox,
    posting,
    presence,
    replies,
    satisfaction,
    support,
    tickets,
)
from kb.helpdesk.accounts import Account
from kb.helpdesk.attachments import ReceivedForm, UploadTooLarge
from kb.helpdesk.context import context_of
from kb.insights import canned_uses, report
from kb.web import canned, forms
from kb.web.errors import wants_json
from kb.web.params import date_param, id_param, int_param
from kb.web.security import CSRF_FIELD, check_csrf
from kb.web.services import Services, bind
from kb.web.sessions import login_required
from kb.web.tickets import categories, ticket_context

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
        Route(
            "/support/tickets/{reference}/statut",
            bind(services, status),
            methods=["POST"],
            name="support_status",
        ),
        Route("/rapport", bind(services, editors_report), name="report"),
    ]


def roles(*allowed: str) -> Any:
    """Logged in, and with one of these roles; an establishment gets a French 403."""

    def decorate(endpoint: Any) -> Any:
        @functools.wraps(endpoint)
        async def wrapper(services: Services, request: Request) -> Response:
            account: Account = request.state.account
            # An administrator is an agent too: what agents may, they may.
            role = "agent" if account.role == "admin" else account.role
            if account.role not in allowed and role not in allowed:
                raise Forbidden("Cette page est réservée à l'équipe d'assistance et aux éditeurs.")
            response: Response = await endpoint(services, request)
            return response

        return login_required(wrapper)

    return decorate


QUEUE_VIEWS = {"mes": "Mes tickets", "non_assignes": "Non assignés", "tous": "Tous"}


@roles("agent")
async def queue(services: Services, request: Request) -> Response:
    params = request.query_params
    agent: Account = request.state.account
    view = params.get("vue", "tous")
    if view not in QUEUE_VIEWS:
        view = "tous"
    agent_param = params.get("agent", "")
    agent_id = agent.id if view == "mes" else None
    if view == "tous" and agent_param.isdigit() and len(agent_param) < 10:
        agent_id = int(agent_param)
    wanted = support.QueueFilter(
        status=params.get("statut", "ouverts"),
        view=view,
        agent_id=agent_id,
        category=params.get("categorie", ""),
        account_id=id_param(request, "etablissement"),
        words=params.get("q", "")[:200],
        page=int_param(request, "page", default=1, low=1, high=10_000),
    )
    engine = services.engine
    found = await anyio.to_thread.run_sync(support.queue, engine, wanted)
    team = await anyio.to_thread.run_sync(assignment.agents, engine)
    unassigned = await anyio.to_thread.run_sync(assignment.unassigned_count, engine)
    mail_failures = await anyio.to_thread.run_sync(outbox.failures, engine)
    mine = next((a.open_tickets for a in team if a.id == agent.id), 0)
    return services.render(
        request, "support_queue.html", queue=found, wanted=wanted, views=QUEUE_VIEWS,
        view_counts={"mes": mine, "non_assignes": unassigned,
                     "tous": sum(found.counts[s] for s in support.OPEN_STATUSES)},
        team=team, overdue=support.is_overdue, mail_failures=mail_failures,
        **ticket_context(services),
    )  # fmt: skip


async def _support_ticket(services: Services, request: Request) -> tickets.Ticket:
    return await anyio.to_thread.run_sync(
        lambda: tickets.get_for(
            services.engine, request.state.account, request.path_params["reference"],
            internal=True,
        )
    )  # fmt: skip


@dataclass(frozen=True)
class HeldView:
    """A held reply as its form shows it: the reply and the colleagues' ones, what the agent
    typed, and what the reply form had chosen (next status, canned replies used)."""

    reply: tickets.Message
    others: list[tickets.Message]
    body: str
    next_status: str
    canned: list[str]
    seen: int


@dataclass(frozen=True)
class Typed:
    """What a refused form had in it, given back with its errors by field id."""

    errors: dict[str, str] = field(default_factory=dict)
    message: str = ""
    internal: bool = False
    next_status: str = ""
    held_id: int | None = None  # the held reply whose form was refused
    held_seen: int = 0
    canned: list[str] = field(default_factory=list)


def _number(raw: object) -> int | None:
    text = str(raw or "").strip()
    return int(text) if text.isdigit() and len(text) < 10 else None


async def _page(
    services: Services, request: Request, status: int = 200, typed: Typed | None = None
) -> Response:
    typed = typed or Typed()
    message = typed.message
    found = await _support_ticket(services, request)
    engine, agent = services.engine, request.state.account
    snapshot = services.snapshot()
    published = {a["slug"]: a for a in snapshot.listing if not a["draft"]}
    # An article renamed since it was read is found under its old slug too.
    published.update(
        {old: published[new] for old, new in snapshot.aliases.items() if new in published}
    )
    context = await anyio.to_thread.run_sync(context_of, engine, found, published)
    offered = await anyio.to_thread.run_sync(canned.offers, services, request, found, context)
    rating = await anyio.to_thread.run_sync(satisfaction.rating_of, engine, found.id)
    if offered.chosen and not message:
        message = offered.chosen.text
    events = await anyio.to_thread.run_sync(assignment.events, engine, found.id)
    team = await anyio.to_thread.run_sync(assignment.agents, engine)
    await anyio.to_thread.run_sync(presence.here, engine, found.id, agent)
    colleagues = await anyio.to_thread.run_sync(presence.colleagues, engine, found.id, agent)
    params = request.query_params
    held = None
    held_id = typed.held_id or _number(params.get("retenue"))
    if held_id is not None:
        seen = typed.held_seen if typed.held_id else _number(params.get("vu")) or 0
        kept = await anyio.to_thread.run_sync(
            replies.held_reply, engine, found, agent, held_id, seen
        )
        if typed.held_id:  # its form refused: as the agent left it
            body, after, used = typed.message, typed.next_status, typed.canned
        else:
            body, after = kept.reply.body, params.get("apres", "en_attente")
            used = [slug for slug in params.get("modeles", "").split(",") if slug]
        held = HeldView(kept.reply, kept.others, body, after, used, seen)
        if typed.held_id:
            message = ""
    query = request.query_params.get("article", "").strip()
    articles = []
    if query:
        snapshot = services.index.snapshot()
        articles = snapshot.search(query, per_page=8).hits
    notices = {
        "repondu": "Réponse envoyée : l'établissement est prévenu par e-mail.",
        "note": "Note interne ajoutée : l'établissement ne la voit pas.",
        "statut": "Statut modifié.",
        "assigne": "Attribution enregistrée.",
        "ouvert": "Ticket ouvert pour l'établissement : il le retrouve dans sa liste des tickets.",
        "abandonne": "Votre réponse retenue est supprimée : elle n'a pas été envoyée.",
    }
    notice = next((t for k, t in notices.items() if k in request.query_params), None)
    # A search for a canned reply that finds none is a refused search: said at the field.
    search_errors = {}
    if offered.query and not offered.items:
        search_errors["reponse-type"] = (
            f"Aucune réponse type ne contient « {offered.query} » : essayez un autre mot."
        )
    held_errors = typed.errors if typed.held_id else {}
    errors = {} if typed.held_id else typed.errors
    return services.render(
        request, "support_ticket.html", status=status, ticket=found, context=context,
        notice=notice, errors=errors, held_errors=held_errors, search_errors=search_errors,
        message=message, internal=typed.internal, next_status=typed.next_status,
        article_query=query, articles=articles, base_url=str(request.base_url).rstrip("/"),
        timeline=sorted([*found.messages, *events], key=lambda item: item.created_at),
        team=team, colleagues=colleagues, held=held, canned=offered, canned_field=canned.FIELD,
        rating=rating,
        **ticket_context(services),
    )  # fmt: skip


@roles("agent")
async def ticket(services: Services, request: Request) -> Response:
    return await _page(services, request)


@roles("agent")
async def reply(services: Services, request: Request) -> Response:
    agent: Account = request.state.account
    found = await _support_ticket(services, request)
    owner = await anyio.to_thread.run_sync(_owner, services.engine, found.account_id)

    form: ReceivedForm | None = None
    try:
        form = await forms.receive(services, request)
        internal = form.fields.get("interne") == "oui"
        # Resolved with the reply, in its transaction: one mail, with the rating links.
        resolve = not internal and form.fields.get("statut_apres") == "resolu"
        uploaded = await anyio.to_thread.run_sync(forms.uploaded, services, request, form)
        seen_field = form.fields.get("dernier_message", "").strip()
        seen = int(seen_field) if seen_field.isdigit() and len(seen_field) < 10 else None
        sent = await anyio.to_thread.run_sync(
            lambda: replies.reply(
                services.engine, services.store, found, agent, form, internal=internal,
                delay=services.answer_delay, limit=services.settings.max_upload_bytes, seen=seen,
                uploaded=uploaded, upload_paths=forms.upload_paths(services, uploaded),
                notify=None if internal else reply_mail(services, found, owner, resolve),
                resolve=resolve,
            )
        )  # fmt: skip
    except (UploadTooLarge, BadRequest) as exc:
        fields = getattr(exc, "fields", None) or (form.fields if form else {})
        typed = Typed(
            forms.field_errors(exc), fields.get("message", ""), fields.get("interne") == "oui",
            fields.get("statut_apres", ""),
        )  # fmt: skip
        status = exc.status
        return await forms.form_error(
            request, exc, typed.errors, lambda: _page(services, request, status, typed)
        )
    next_status = form.fields.get("statut_apres", "")
    used = canned.used(services, form.lists.get(canned.FIELD, []))
    if sent.held:
        url = held_url(found.reference, sent.message_id, seen or 0, next_status, used)
        if wants_json(request):
            return JSONResponse({"reference": found.reference, "url": url, "held": True})
        return RedirectResponse(url, status_code=303)
    await after_reply(services, request, found, sent.message_id, form.fields.get("message", ""),
                      next_status, internal, used)  # fmt: skip
    notice = "note" if internal else "repondu"
    url = f"/support/tickets/{found.reference}?{notice}=1#fil"
    if wants_json(request):  # the page's script sent it, with its progress bar
        return JSONResponse({"reference": found.reference, "url": url})
    return RedirectResponse(url, status_code=303)


# Statuses a reply sets in its own transaction ("en_attente" by default, "resolu" when chosen).
DONE_WITH_REPLY = ("en_attente", "resolu")


def held_url(reference: str, message_id: int, seen: int, next_status: str, used: list[str]) -> str:
    after = next_status if next_status in tickets.STATUSES else "en_attente"
    query = urlencode(
        {"retenue": message_id, "vu": seen, "apres": after, "modeles": ",".join(used)}
    )
    return f"/support/tickets/{reference}?{query}#retenue"


async def after_reply(
    services: Services, request: Request, found: tickets.Ticket, message_id: int, body: str,
    next_status: str, internal: bool, used: list[str],
) -> None:  # fmt: skip
    """What a reply sent sets off: its article links and canned replies counted, the status
    chosen, the mail."""
    snapshot = services.index.snapshot()
    slugs = support.linked_slugs(body, snapshot.aliases, (a["slug"] for a in snapshot.listing))
    await anyio.to_thread.run_sync(support.record_links, services.engine, message_id, slugs)
    if not internal:
        await anyio.to_thread.run_sync(canned_uses.record, services.engine, used)
    if next_status in tickets.STATUSES and not internal and next_status not in DONE_WITH_REPLY:
        refreshed = await _support_ticket(services, request)
        await anyio.to_thread.run_sync(
            lambda: posting.set_status(
                services.engine, refreshed, next_status,
                delay=services.answer_delay,
            )
        )  # fmt: skip


def reply_mail(
    services: Services, found: tickets.Ticket, owner: Account, resolved: bool = False
) -> Callable[[Any, int | None], None]:
    """Queues the establishment's "Réponse du support" mail (or, `resolved`, "Demande
    résolue" with the rating links) in the reply's own transaction."""

    def notify(connection: Any, message_id: int | None) -> None:
        notifications.queue_support_reply(
            connection, services.settings, owner, found.reference, found.subject,
            message_id=message_id, secret=services.secret_key, links=services.links,
            resolved=resolved,
        )  # fmt: skip

    return notify


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
    told: Callable[[Any], None] | None = None
    if wanted == "resolu" and found.open:  # resolved without a reply: the rating links still go
        owner = await anyio.to_thread.run_sync(_owner, services.engine, found.account_id)
        mail = reply_mail(services, found, owner, resolved=True)

        def told(connection: Any) -> None:
            mail(connection, None)

    await anyio.to_thread.run_sync(
        lambda: posting.set_status(
            services.engine, found, str(wanted), delay=services.answer_delay, notify=told,
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
    titles = {r.slug: r.title for r in canned.library(services)}
    uses = await anyio.to_thread.run_sync(canned_uses.most_used, services.engine, since, until)
    start = dt.datetime.combine(since, dt.time(), tzinfo=clock.PARIS)
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), tzinfo=clock.PARIS)
    per_category = await anyio.to_thread.run_sync(
        satisfaction.by_category, services.engine, start, end, categories(services)
    )
    per_agent = await anyio.to_thread.run_sync(satisfaction.by_agent, services.engine, start, end)
    return services.render(
        request, "report.html", report=built, chart=report.chart_svg(built.daily), short=short,
        canned_uses=[(slug, titles.get(slug, slug), n) for slug, n in uses],
        satisfaction_per_category=per_category, satisfaction_per_agent=per_agent,
    )  # fmt: skip
