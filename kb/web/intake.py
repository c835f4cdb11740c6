"""Tickets opened by support for an establishment that phoned or wrote an e-mail."""

from __future__ import annotations

import functools
import uuid

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kb.helpdesk import accounts, tickets
from kb.helpdesk.accounts import Account, AccountError
from kb.helpdesk.attachments import ReceivedForm
from kb.web.services import Services, bind
from kb.web.support import roles
from kb.web.tickets import Opening, open_ticket, ticket_context

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

    async def opening(form: ReceivedForm) -> Opening:
        errors = {}
        channel = form.fields.get("canal", "")
        if channel not in CHANNELS:
            errors["canal"] = "Indiquez comment la demande est arrivée : téléphone ou e-mail."
        owner = None
        try:
            owner = await anyio.to_thread.run_sync(
                establishment_of, services, form.fields.get("uai", "")
            )
        except AccountError as exc:
            errors["uai"] = exc.message
        return Opening(owner, channel, agent, errors)

    return await open_ticket(
        services, request, opening, functools.partial(_page, services, request),
        lambda reference, _created: f"/support/tickets/{reference}?ouvert=1",
    )  # fmt: skip
