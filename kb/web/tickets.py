"""Help tickets on the web: the list, the form with streamed attachments, the thread."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from kb.errors import BadRequest, KbError, NotFound
from kb.helpdesk import attachments, notifications, tickets
from kb.helpdesk.accounts import Account
from kb.helpdesk.attachments import ReceivedForm, UploadTooLarge
from kb.helpdesk.business_hours import in_words, short
from kb.helpdesk.tickets import TicketInvalid
from kb.helpdesk.uploads import Upload, Uploads
from kb.web.auth import login_required
from kb.web.pages import render
from kb.web.params import ID_MAX, int_param, whole_number
from kb.web.security import CSRF_FIELD, check_csrf

log = logging.getLogger("kb.helpdesk.tickets")
MULTIPART_SLACK = 1024 * 1024  # the form's text fields and multipart framing around the files


def routes() -> list[Route]:
    return [
        Route("/tickets", list_or_create, methods=["GET", "POST"], name="tickets"),
        Route("/tickets/nouveau", new, name="new_ticket"),
        Route("/tickets/{reference}", show, name="ticket"),
        Route("/tickets/{reference}/reponses", reply, methods=["POST"], name="ticket_reply"),
        Route("/tickets/{reference}/statut", status, methods=["POST"]),
        Route("/tickets/{reference}/pieces-jointes/{attachment}", download),
    ]


def _categories(request: Request) -> dict[str, str]:
    snapshot = request.app.state.index.snapshot()
    return {c["slug"]: c["title"] for c in snapshot.categories}


def _wants_json(request: Request) -> bool:
    return request.headers.get("accept", "").startswith("application/json")


def _ticket_context(request: Request) -> dict[str, Any]:
    settings = request.app.state.settings
    return {
        "statuses": tickets.STATUSES,
        "category_titles": _categories(request),
        "in_words": in_words,
        "short": short,
        "human_size": attachments.human_size,
        "max_upload": settings.max_upload_bytes,
        "max_upload_words": attachments.human_size(settings.max_upload_bytes),
        "answer_hours": settings.answer_hours,
    }


@login_required
async def list_or_create(request: Request) -> Response:
    if request.method == "POST":
        return await create(request)
    account: Account = request.state.account
    page = int_param(request, "page", default=1, low=1, high=10_000)
    listing = await anyio.to_thread.run_sync(
        tickets.list_for, request.app.state.engine, account, page
    )
    return render(request, "tickets.html", listing=listing, **_ticket_context(request))


def _form_page(
    request: Request, status: int = 200, fields: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    fields = fields or {}
    category = fields.get("categorie", request.query_params.get("categorie", ""))
    return render(
        request,
        "ticket_new.html",
        status=status,
        fields={**fields, "categorie": category},
        errors=errors or {},
        token=fields.get("jeton") or uuid.uuid4().hex,
        **_ticket_context(request),
    )


@login_required
async def new(request: Request) -> Response:
    return _form_page(request)


async def _receive(request: Request) -> ReceivedForm:
    """The body, streamed: refused at once when it announces more than the limit."""
    state = request.app.state
    limit = state.settings.max_upload_bytes
    declared = whole_number(request.headers.get("content-length", ""))
    if declared is not None and declared > limit + MULTIPART_SLACK:
        raise attachments.too_large(limit)
    form = await attachments.receive(
        request.stream(), request.headers.get("content-type", ""), state.store.temp_dir, limit
    )
    try:
        check_csrf(request, form.fields.get(CSRF_FIELD))
    except KbError:
        form.discard()
        raise
    return form


async def _error(request: Request, exc: KbError, page: Any) -> Response:
    if _wants_json(request):
        error: dict[str, Any] = {"status": exc.status, "code": exc.code, "message": exc.message}
        if isinstance(exc, TicketInvalid):
            error["fields"] = exc.errors
        return JSONResponse({"error": error}, status_code=exc.status)
    response = page()
    return await response if hasattr(response, "__await__") else response


async def create(request: Request) -> Response:
    state = request.app.state
    account: Account = request.state.account
    categories = _categories(request)
    try:
        form = await _receive(request)
    except (UploadTooLarge, BadRequest) as exc:
        fields = getattr(exc, "fields", {})
        errors = {"fichiers": exc.message}
        return await _error(
            request, exc, lambda status=exc.status: _form_page(request, status, fields, errors)
        )
    try:
        uploaded = await anyio.to_thread.run_sync(_uploaded, request, form)
        reference, created = await anyio.to_thread.run_sync(
            lambda: tickets.create(
                state.engine, state.store, account, form, categories,
                hours=state.settings.answer_hours, calendar=state.settings.holiday_calendar,
                uploaded=uploaded, upload_paths=_paths(request, uploaded),
            )
        )  # fmt: skip
    except TicketInvalid as exc:
        errors = dict(exc.errors)
        if form.files:
            errors["fichiers"] = "Sélectionnez à nouveau vos pièces jointes avant d'envoyer."
        form.discard()
        return await _error(request, exc, lambda: _form_page(request, 400, form.fields, errors))
    if created:
        subject = " ".join(form.fields["sujet"].split())
        category = categories[form.fields["categorie"].strip()]
        await _notify(
            notifications.send_new_ticket,
            state.mailer, state.settings, account, reference, subject, category,
            form.fields["message"].strip(),
        )  # fmt: skip
    url = f"/tickets/{reference}" + ("?cree=1" if created else "")
    if _wants_json(request):
        return JSONResponse(
            {"reference": reference, "url": url}, status_code=201 if created else 200
        )
    return RedirectResponse(url, status_code=303)


def _uploaded(request: Request, form: ReceivedForm) -> list[Upload]:
    """The resumable uploads the form names: this account's, and complete."""
    store: Uploads = request.app.state.uploads
    found = []
    for upload_id in form.lists.get("televersement", [])[: attachments.MAX_FILES]:
        try:
            upload = store.get(request.state.account, upload_id.strip())
        except KbError:
            raise TicketInvalid(
                {"fichiers": "Une pièce jointe n'est plus disponible : joignez-la à nouveau."}
            ) from None
        if not upload.completed:
            raise TicketInvalid(
                {"fichiers": f"« {upload.filename} » n'est pas encore entièrement envoyé."}
            )
        found.append(upload)
    return found


def _paths(request: Request, uploaded: list[Upload]) -> dict[str, Path]:
    return {u.id: request.app.state.uploads.path(u.id) for u in uploaded}


async def _notify(send: Any, *args: Any) -> None:
    """Mail is sent after the ticket is safe; a mail failure never loses the ticket."""
    try:
        await anyio.to_thread.run_sync(send, *args)
    except Exception:
        log.exception("tickets: notification failed")


async def _ticket(request: Request) -> tickets.Ticket:
    account: Account = request.state.account
    return await anyio.to_thread.run_sync(
        tickets.get_for, request.app.state.engine, account, request.path_params["reference"]
    )


@login_required
async def show(request: Request) -> Response:
    return await _thread_page(request)


async def _thread_page(
    request: Request, status: int = 200, errors: dict[str, str] | None = None, message: str = ""
) -> Response:
    ticket = await _ticket(request)
    notices = {
        "cree": "Votre demande est enregistrée. Vous recevrez la réponse dans ce fil.",
        "repondu": "Votre réponse est ajoutée au fil.",
        "resolu": "Le ticket est marqué comme résolu.",
        "rouvert": "Le ticket est rouvert.",
    }
    notice = next((t for k, t in notices.items() if k in request.query_params), None)
    return render(
        request, "ticket.html", status=status, ticket=ticket, notice=notice, errors=errors or {},
        message=message, **_ticket_context(request),
    )  # fmt: skip


@login_required
async def reply(request: Request) -> Response:
    state = request.app.state
    account: Account = request.state.account
    ticket = await _ticket(request)
    try:
        form = await _receive(request)
        uploaded = await anyio.to_thread.run_sync(_uploaded, request, form)
        await anyio.to_thread.run_sync(
            lambda: tickets.reply(
                state.engine, state.store, ticket, account, form,
                hours=state.settings.answer_hours, calendar=state.settings.holiday_calendar,
                uploaded=uploaded, upload_paths=_paths(request, uploaded),
            )
        )  # fmt: skip
    except (UploadTooLarge, BadRequest) as exc:
        typed = getattr(exc, "fields", None) or {}
        errors, status = {"message": exc.message}, exc.status
        return await _error(
            request, exc, lambda: _thread_page(request, status, errors, typed.get("message", ""))
        )
    url = f"/tickets/{ticket.reference}?repondu=1#fil"
    if _wants_json(request):
        return JSONResponse({"reference": ticket.reference, "url": url})
    return RedirectResponse(url, status_code=303)


@login_required
async def status(request: Request) -> Response:
    state = request.app.state
    ticket = await _ticket(request)
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD))
    wanted = form.get("statut")
    if wanted == "resolu":
        new_status, notice = "resolu", "resolu"
    elif wanted == "rouvrir":
        new_status, notice = "en_cours", "rouvert"
    else:
        raise BadRequest("Action inconnue sur ce ticket.")
    await anyio.to_thread.run_sync(
        lambda: tickets.set_status(
            state.engine, ticket, new_status,
            hours=state.settings.answer_hours, calendar=state.settings.holiday_calendar,
        )
    )  # fmt: skip
    return RedirectResponse(f"/tickets/{ticket.reference}?{notice}=1", status_code=303)


@login_required
async def download(request: Request) -> Response:
    """Only for the establishment that owns the ticket, and for support; never shown inline."""
    state = request.app.state
    attachment_id = whole_number(request.path_params["attachment"], ID_MAX)
    if attachment_id is None:
        raise NotFound("Cette pièce jointe n'existe pas.")
    found = await anyio.to_thread.run_sync(
        tickets.attachment_for,
        state.engine, request.state.account, request.path_params["reference"], attachment_id,
    )  # fmt: skip
    path = state.store.final_path(found.stored_as)
    ascii_name = (
        found.filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    )
    return FileResponse(
        path,
        media_type="application/octet-stream",
        headers={
            "content-disposition": (
                f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(found.filename)}"
            ),
            "cache-control": "private, no-store",
            "x-content-type-options": "nosniff",
        },
    )
