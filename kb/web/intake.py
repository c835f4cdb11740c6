"""Tickets opened by support for an establishment that phoned or wrote an e-mail."""

from __future__ import annotations

import uuid

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from kb.errors import BadRequest
from kb.helpdesk import accounts, posting, tickets
from kb.helpdesk.accounts import Account, AccountError
from kb.helpdesk.attachments import UploadTooLarge
from kb.helpdesk.tickets import TicketInvalid
from kb.web import forms
from kb.web.errors import wants_json
from kb.web.formatting import error_text
from kb.web.services import Services, bind
from kb.web.support import roles
from kb.web.tickets import acknowledge, categories, ticket_context

CHANNELS = {k: v for k, v in tickets.CHANNELS.items() if k != "web"}


def routes(services: Services) -> list[Route]:
    # Before /support/tickets/{reference}: "nouveau" is no reference.
    return [
        Route("/support/tickets/nouveau", bind(services, new), name="support_new_ticket"),
        Route("/support/tickets", bind(services, create), methods=["POST"],
              name="support_create_ticket"),
    ]  # fmt: skip


def _page(
    services: Services, request: Request, status: int = 200,
    fields: dict[str, str] | None = None, errors: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    fields = fields or {}
    return services.render(
        request, "support_ticket_new.html", status=status, fields=fields, errors=errors or {},
        intake_channels=CHANNELS, token=fields.get("jeton") or uuid.uuid4().hex,
        **ticket_context(services),
    )  # fmt: skip


@roles("agent")
async def new(services: Services, request: Request) -> Response:
    return _page(services, request, fields={"uai": request.query_params.get("uai", "")[:20]})


def establishment_of(services: Services, raw: str) -> Account:
    """The active establishment with this UAI code, or a French message saying what is wrong."""
    if not raw.strip():
        raise AccountError("Indiquez le code UAI de l'établissement qui a appelé ou écrit.")
    code = accounts.normalize_uai(raw)
    found = accounts.by_login(services.engine, code)
    if found is None or found.role != "etablissement":
        raise AccountError(f"Aucun établissement n'a le code UAI {code}.")
    if found.disabled:
        raise AccountError(f"Le compte de l'établissement {code} est désactivé.")
    return found


@roles("agent")
async def create(services: Services, request: Request) -> Response:
    agent: Account = request.state.account
    titles = categories(services)
    try:
        form = await forms.receive(services, request)
    except (UploadTooLarge, BadRequest) as exc:
        fields: dict[str, str] = getattr(exc, "fields", {})
        errors, status = {"fichiers": error_text(exc)}, exc.status
        return await forms.form_error(
            request, exc, errors, lambda: _page(services, request, status, fields, errors)
        )
    errors = {}
    channel = form.fields.get("canal", "")
    if channel not in CHANNELS:
        errors["canal"] = "Indiquez comment la demande est arrivée : téléphone ou e-mail."
    try:
        owner = await anyio.to_thread.run_sync(
            establishment_of, services, form.fields.get("uai", "")
        )
    except AccountError as exc:
        errors["uai"] = exc.message
    try:
        if errors:
            posting.validate(form, titles)  # every problem at once
            raise TicketInvalid(errors)
        uploaded = await anyio.to_thread.run_sync(forms.uploaded, services, request, form)
        reference, _created = await anyio.to_thread.run_sync(
            lambda: posting.create(
                services.engine, services.store, owner, form, titles,
                delay=services.answer_delay, limit=services.settings.max_upload_bytes,
                channel=channel, opened_by=agent,
                uploaded=uploaded, upload_paths=forms.upload_paths(services, uploaded),
                # The establishment is told as if it had written: reference and due date.
                notify=acknowledge(
                    services, owner, " ".join(form.fields.get("sujet", "").split()),
                    titles.get(form.fields.get("categorie", "").strip(), ""),
                ),
            )
        )  # fmt: skip
    except TicketInvalid as exc:
        found = {**errors, **exc.errors}
        if form.files:
            found["fichiers"] = "Sélectionnez à nouveau les pièces jointes avant d'envoyer."
        form.discard()
        return await forms.form_error(
            request,
            TicketInvalid(found),
            found,
            lambda: _page(services, request, 400, form.fields, found),
        )
    url = f"/support/tickets/{reference}?ouvert=1"
    if wants_json(request):
        return JSONResponse({"reference": reference, "url": url}, status_code=201)
    return RedirectResponse(url, status_code=303)
