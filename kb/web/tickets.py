"""Help tickets on the web: the list, the form with streamed attachments, the thread."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from kb import tables
from kb.errors import BadRequest, NotFound
from kb.helpdesk import notifications, posting, replies, satisfaction, tickets
from kb.helpdesk.accounts import Account
from kb.helpdesk.attachments import AttachmentMissing, ReceivedForm, UploadTooLarge
from kb.helpdesk.tickets import TicketInvalid
from kb.web import forms
from kb.web.downloads import AttachmentResponse
from kb.web.errors import wants_json
from kb.web.formatting import error_text
from kb.web.params import ID_MAX, int_param, whole_number
from kb.web.security import CSRF_FIELD, check_csrf
from kb.web.services import Services, bind
from kb.web.sessions import login_required

log = logging.getLogger("kb.helpdesk.tickets")


def routes(services: Services) -> list[Route]:
    return [
        Route("/tickets", bind(services, list_or_create), methods=["GET", "POST"], name="tickets"),
        Route("/tickets/nouveau", bind(services, new), name="new_ticket"),
        Route("/tickets/{reference}", bind(services, show), name="ticket"),
        Route(
            "/tickets/{reference}/reponses",
            bind(services, reply),
            methods=["POST"],
            name="ticket_reply",
        ),
        Route(
            "/tickets/{reference}/statut",
            bind(services, status),
            methods=["POST"],
            name="ticket_status",
        ),
        Route(
            "/tickets/{reference}/pieces-jointes/{attachment}",
            bind(services, download),
            name="attachment",
        ),
    ]


def categories(services: Services) -> dict[str, str]:
    """Category titles by slug, as the live index has them."""
    return {c["slug"]: c["title"] for c in services.snapshot().categories}


def ticket_context(services: Services) -> dict[str, Any]:
    """What the ticket pages, the establishment's and support's, show beside a ticket."""
    settings = services.settings
    return {
        "statuses": tickets.STATUSES,
        "staff_statuses": tickets.STAFF_STATUSES,
        "channels": tickets.CHANNELS,
        "category_titles": categories(services),
        "max_upload": settings.max_upload_bytes,
    }


def acknowledge(
    services: Services, owner: Account, subject: str, category: str
) -> Callable[[Any, str], None]:
    """Queues the establishment's acknowledgment (reference, category, due date, link) in the
    ticket's own transaction."""

    def queue(connection: Any, reference: str) -> None:
        due_at = connection.execute(
            sa.select(tables.tickets.c.due_at).where(tables.tickets.c.reference == reference)
        ).scalar_one()  # the ticket's own due date, as its page shows it
        notifications.queue_acknowledgment(
            connection, services.settings, services.secret_key, owner, reference, subject,
            category, due_at, services.links,
        )  # fmt: skip

    return queue


def tell_support(
    services: Services, ticket: tickets.Ticket, author: Account
) -> Callable[[Any, int | None], None] | None:
    """Queues support's notice of what the establishment did (an answer, or None: resolved) in
    that action's own transaction; nothing for what staff wrote."""
    if author.is_staff:
        return None

    def notify(connection: Any, message_id: int | None) -> None:
        notifications.queue_establishment_news(
            connection, services.settings, services.links, services.secret_key, ticket.id,
            author, message_id,
        )  # fmt: skip

    return notify


@login_required
async def list_or_create(services: Services, request: Request) -> Response:
    if request.method == "POST":
        return await create(services, request)
    account: Account = request.state.account
    page = int_param(request, "page", default=1, low=1, high=10_000)
    listing = await anyio.to_thread.run_sync(tickets.list_for, services.engine, account, page)
    return services.render(request, "tickets.html", listing=listing, **ticket_context(services))


def _form_page(
    services: Services, request: Request, status: int = 200, fields: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    fields = fields or {}
    category = fields.get("categorie", request.query_params.get("categorie", ""))
    return services.render(
        request,
        "ticket_new.html",
        status=status,
        fields={**fields, "categorie": category},
        errors=errors or {},
        token=fields.get("jeton") or uuid.uuid4().hex,
        **ticket_context(services),
    )


@login_required
async def new(services: Services, request: Request) -> Response:
    return _form_page(services, request)


async def create(services: Services, request: Request) -> Response:
    account: Account = request.state.account

    async def opening(form: ReceivedForm) -> Opening:
        return Opening(account)

    return await open_ticket(
        services, request, opening, functools.partial(_form_page, services, request),
        lambda reference, created: f"/tickets/{reference}" + ("?cree=1" if created else ""),
    )  # fmt: skip


@dataclass(frozen=True)
class Opening:
    """Whose ticket a form opens: the establishment writing, or one an agent writes for
    (`opened_by`, with the `channel` the request came by); `errors` found before the form's
    own (the establishment is unknown, say), reported with them."""

    owner: Account | None
    channel: str = "web"
    opened_by: Account | None = None
    errors: dict[str, str] = field(default_factory=dict)


async def open_ticket(
    services: Services,
    request: Request,
    opening: Callable[[ReceivedForm], Awaitable[Opening]],
    page: Callable[[int, dict[str, str], dict[str, str]], Response],
    landing: Callable[[str, bool], str],
) -> Response:
    """The ticket form, received and turned into a ticket, then `landing(reference, created)`;
    or the form again (`page(status, fields, errors)`, or the JSON error) with every problem at
    once. The establishment gets its acknowledgment; support its new-ticket mail unless an
    agent wrote it. A form sent twice (same token) lands on the first ticket."""
    titles = categories(services)
    try:
        form = await forms.receive(services, request)
    except (UploadTooLarge, BadRequest) as exc:
        fields: dict[str, str] = getattr(exc, "fields", {})
        refused, status = {"fichiers": error_text(exc)}, exc.status
        return await forms.form_error(request, exc, refused, lambda: page(status, fields, refused))
    opened = await opening(form)
    owner = opened.owner
    subject = " ".join(form.fields.get("sujet", "").split())
    category = titles.get(form.fields.get("categorie", "").strip(), "")

    def notify(connection: Any, reference: str) -> None:
        assert owner is not None
        # The establishment is told as if it had written: reference and due date.
        acknowledge(services, owner, subject, category)(connection, reference)
        if opened.opened_by is None:
            notifications.queue_new_ticket(
                connection, services.settings, owner, reference, subject, category,
                form.fields.get("message", "").strip(), services.links,
            )  # fmt: skip

    try:
        if opened.errors or owner is None:
            posting.validate(form, titles)  # every problem at once
            raise TicketInvalid(opened.errors)
        uploaded = await anyio.to_thread.run_sync(forms.uploaded, services, request, form)
        reference, created = await anyio.to_thread.run_sync(
            lambda: posting.create(
                services.engine, services.store, owner, form, titles,
                delay=services.answer_delay, limit=services.settings.max_upload_bytes,
                channel=opened.channel, opened_by=opened.opened_by,
                uploaded=uploaded, upload_paths=forms.upload_paths(services, uploaded),
                notify=notify,
            )
        )  # fmt: skip
    except TicketInvalid as exc:
        errors = {**opened.errors, **exc.errors}
        if form.files:
            whose = "vos" if opened.opened_by is None else "les"
            errors["fichiers"] = f"Sélectionnez à nouveau {whose} pièces jointes avant d'envoyer."
        form.discard()
        reported = TicketInvalid(errors) if opened.errors else exc
        return await forms.form_error(
            request, reported, errors, lambda: page(400, form.fields, errors)
        )
    except UploadTooLarge as exc:  # the form's files and the resumable uploads, together
        form.discard()
        too_large, status = {"fichiers": error_text(exc)}, exc.status
        return await forms.form_error(
            request, exc, too_large, lambda: page(status, form.fields, too_large)
        )
    if created:
        services.metrics.tickets_created.inc()
    url = landing(reference, created)
    if wants_json(request):
        return JSONResponse(
            {"reference": reference, "url": url}, status_code=201 if created else 200
        )
    return RedirectResponse(url, status_code=303)


async def _ticket(services: Services, request: Request) -> tickets.Ticket:
    account: Account = request.state.account
    return await anyio.to_thread.run_sync(
        tickets.get_for, services.engine, account, request.path_params["reference"]
    )


@login_required
async def show(services: Services, request: Request) -> Response:
    return await _thread_page(services, request)


async def _thread_page(
    services: Services,
    request: Request,
    status: int = 200,
    errors: dict[str, str] | None = None,
    message: str = "",
) -> Response:
    ticket = await _ticket(services, request)
    notices = {
        "cree": "Votre demande est enregistrée. Vous recevrez la réponse dans ce fil.",
        "repondu": "Votre réponse est ajoutée au fil.",
        "resolu": "Le ticket est marqué comme résolu.",
        "rouvert": "Le ticket est rouvert.",
        "avis": "Merci : votre avis est enregistré.",
    }
    notice = next((t for k, t in notices.items() if k in request.query_params), None)
    rating = await anyio.to_thread.run_sync(satisfaction.rating_of, services.engine, ticket.id)
    return services.render(
        request, "ticket.html", status=status, ticket=ticket, notice=notice, errors=errors or {},
        message=message, rating=rating, **ticket_context(services),
    )  # fmt: skip


@login_required
async def reply(services: Services, request: Request) -> Response:
    account: Account = request.state.account
    ticket = await _ticket(services, request)
    form: ReceivedForm | None = None
    try:
        form = await forms.receive(services, request)
        uploaded = await anyio.to_thread.run_sync(forms.uploaded, services, request, form)
        await anyio.to_thread.run_sync(
            lambda: replies.reply(
                services.engine, services.store, ticket, account, form,
                delay=services.answer_delay, limit=services.settings.max_upload_bytes,
                uploaded=uploaded, upload_paths=forms.upload_paths(services, uploaded),
                notify=tell_support(services, ticket, account),
            )
        )  # fmt: skip
    except (UploadTooLarge, BadRequest) as exc:
        typed = getattr(exc, "fields", None) or (form.fields if form else {})
        errors, status = forms.field_errors(exc), exc.status
        return await forms.form_error(
            request,
            exc,
            errors,
            lambda: _thread_page(services, request, status, errors, typed.get("message", "")),
        )
    url = f"/tickets/{ticket.reference}?repondu=1#fil"
    if wants_json(request):
        return JSONResponse({"reference": ticket.reference, "url": url})
    return RedirectResponse(url, status_code=303)


@login_required
async def status(services: Services, request: Request) -> Response:
    ticket = await _ticket(services, request)
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD))
    wanted = form.get("statut")
    if wanted == "resolu":
        new_status, notice = "resolu", "resolu"
    elif wanted == "rouvrir":
        if ticket.closed:
            raise BadRequest(replies.CLOSED)
        new_status, notice = "en_cours", "rouvert"
    else:
        raise BadRequest("Action inconnue sur ce ticket.")
    told = tell_support(services, ticket, request.state.account)
    await anyio.to_thread.run_sync(
        lambda: posting.set_status(
            services.engine, ticket, new_status, delay=services.answer_delay,
            notify=(lambda connection: told(connection, None))
            if told and notice == "resolu" and ticket.open else None,
        )
    )  # fmt: skip
    return RedirectResponse(f"/tickets/{ticket.reference}?{notice}=1", status_code=303)


@login_required
async def download(services: Services, request: Request) -> Response:
    """Only for the establishment that owns the ticket, and for support; never shown inline,
    never compressed; a cut download resumes where it stopped (Range, If-Range)."""
    attachment_id = whole_number(request.path_params["attachment"], ID_MAX)
    if attachment_id is None:
        raise NotFound("Cette pièce jointe n'existe pas.")
    found = await anyio.to_thread.run_sync(
        tickets.attachment_for,
        services.engine, request.state.account, request.path_params["reference"], attachment_id,
    )  # fmt: skip
    try:
        path = await anyio.to_thread.run_sync(services.store.existing, found.stored_as)
    except AttachmentMissing:
        log.warning("attachments: %s (attachment %d) missing from the data dir",
                    found.stored_as, found.id)  # fmt: skip
        raise
    return AttachmentResponse(
        path, filename=found.filename, sha256=found.sha256, added_at=found.added_at
    )
