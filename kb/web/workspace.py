"""The agent's workspace on a ticket: assignment, colleagues' presence, held replies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from kb.errors import BadRequest
from kb.helpdesk import assignment, presence, replies
from kb.helpdesk.accounts import Account
from kb.helpdesk.tickets import TicketInvalid
from kb.web import canned
from kb.web.security import CSRF_FIELD, check_csrf
from kb.web.services import Services, bind
from kb.web.support import (
    Typed,
    _number,
    _owner,
    _page,
    _support_ticket,
    after_reply,
    held_url,
    reply_mail,
    roles,
)

STREAM_POLL_SECONDS = 2.0
# An event stream ends after a while and the browser opens a new one (EventSource retries):
# no connection is held for ever by a replica that may be drained.
STREAM_SECONDS = 300.0


def routes(services: Services) -> list[Route]:
    base = "/support/tickets/{reference}"
    return [
        Route(f"{base}/attribution", bind(services, assign), methods=["POST"],
              name="support_assign"),
        Route(f"{base}/presence", bind(services, stream), name="support_presence"),
        Route(f"{base}/presence", bind(services, typing), methods=["POST"],
              name="support_typing"),
        Route(f"{base}/retenues/{{message:int}}", bind(services, held), methods=["POST"],
              name="support_held"),
    ]  # fmt: skip


@roles("agent")
async def assign(services: Services, request: Request) -> Response:
    """'Me l'attribuer', 'Confier à…', 'Retirer l'attribution'."""
    agent: Account = request.state.account
    found = await _support_ticket(services, request)
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD))
    wanted = str(form.get("agent", "")).strip()
    if wanted == "moi":
        assignee: int | None = agent.id
    elif wanted == "":
        assignee = None
    else:
        assignee = _number(wanted)
        if assignee is None:
            raise BadRequest("Choisissez un agent du support dans la liste.")
    await anyio.to_thread.run_sync(assignment.assign, services.engine, found.id, agent, assignee)
    return RedirectResponse(f"/support/tickets/{found.reference}?assigne=1", status_code=303)


@roles("agent")
async def stream(services: Services, request: Request) -> Response:
    """Server-sent events for an open ticket page: who else is here or writing, and a reply
    that arrived since the page was loaded (`?vu=` the last message it shows)."""
    engine, agent = services.engine, request.state.account
    found = await _support_ticket(services, request)
    seen = _number(request.query_params.get("vu")) or found.last_message_id

    async def events() -> AsyncIterator[str]:
        last_presence: list[dict[str, object]] | None = None
        announced = seen
        yield "retry: 3000\n\n"
        try:
            with anyio.move_on_after(STREAM_SECONDS):
                while not await request.is_disconnected():
                    await anyio.to_thread.run_sync(presence.here, engine, found.id, agent)
                    others = await anyio.to_thread.run_sync(
                        presence.colleagues, engine, found.id, agent
                    )
                    now_here = [
                        {"nom": c.name, "ecrit": c.writing, "texte": c.words} for c in others
                    ]
                    if now_here != last_presence:
                        last_presence = now_here
                        yield f"event: presence\ndata: {json.dumps(now_here)}\n\n"
                    latest, author = await anyio.to_thread.run_sync(
                        presence.latest_message, engine, found.id
                    )
                    if latest > announced:
                        announced = latest
                        data = json.dumps({"id": latest, "auteur": author})
                        yield f"event: message\ndata: {data}\n\n"
                    await anyio.sleep(STREAM_POLL_SECONDS)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(presence.gone, engine, found.id, agent)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


@roles("agent")
async def typing(services: Services, request: Request) -> Response:
    """The page's script says its agent is typing a reply (every few seconds while they do)."""
    check_csrf(request, request.headers.get("x-csrf-token"))
    found = await _support_ticket(services, request)
    await anyio.to_thread.run_sync(
        lambda: presence.here(services.engine, found.id, request.state.account,
                              typing=True)
    )  # fmt: skip
    return Response(status_code=204)


@roles("agent")
async def held(services: Services, request: Request) -> Response:
    """A held reply: sent as it now reads ('envoyer'), or given up ('abandonner')."""
    agent: Account = request.state.account
    found = await _support_ticket(services, request)
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD))
    message_id = request.path_params["message"]
    action = form.get("action")
    if action == "abandonner":
        await anyio.to_thread.run_sync(
            replies.discard, services.engine, services.store, found, agent, message_id
        )
        return RedirectResponse(f"/support/tickets/{found.reference}?abandonne=1", status_code=303)
    if action != "envoyer":
        raise BadRequest("Action inconnue sur cette réponse.")
    body = str(form.get("message", ""))
    seen = _number(form.get("dernier_message")) or 0
    next_status = str(form.get("statut_apres", ""))
    owner = await anyio.to_thread.run_sync(_owner, services.engine, found.account_id)
    try:
        sent = await anyio.to_thread.run_sync(
            lambda: replies.release(
                services.engine, found, agent, message_id, body, seen,
                delay=services.answer_delay, resolve=next_status == "resolu",
                notify=reply_mail(services, found, owner, resolved=next_status == "resolu"),
            )
        )  # fmt: skip
    except TicketInvalid as exc:
        typed = Typed(
            {"retenue-message": exc.errors.get("message", exc.message)}, body,
            next_status=next_status, held_id=message_id, held_seen=_number(form.get("vu")) or 0,
            canned=[str(v) for v in form.getlist(canned.FIELD)],
        )  # fmt: skip
        return await _page(services, request, exc.status, typed)
    used = canned.used(services, [str(v) for v in form.getlist(canned.FIELD)])
    if sent.held:  # yet another reply meanwhile: compare again
        url = held_url(found.reference, message_id, seen, next_status, used)
        return RedirectResponse(url, status_code=303)
    await after_reply(services, request, found, message_id, body, next_status, False, used)
    return RedirectResponse(f"/support/tickets/{found.reference}?repondu=1#fil", status_code=303)
