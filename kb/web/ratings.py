"""The establishment rates its resolved ticket: on the ticket's page, or from the mail's link."""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from kb.errors import BadRequest, NotFound
from kb.helpdesk import satisfaction, tickets
from kb.helpdesk.accounts import Account
from kb.web.security import CSRF_FIELD, check_csrf
from kb.web.services import Services, bind
from kb.web.sessions import login_required

CHOICES = {"satisfait": True, "pas_satisfait": False}
LINK_GONE = "Ce lien d'avis n'est pas valable : donnez votre avis depuis la page du ticket."


def routes(services: Services) -> list[Route]:
    return [
        Route("/tickets/{reference}/avis", bind(services, rate_on_page), methods=["POST"],
              name="ticket_rating"),
        Route("/avis/{reference}/{token}", bind(services, rate_from_mail),
              methods=["GET", "POST"], name="rating_link"),
    ]  # fmt: skip


def _choice(raw: object) -> bool:
    if raw not in CHOICES:
        raise BadRequest("Choisissez « Satisfait » ou « Pas satisfait ».")
    return CHOICES[str(raw)]


@login_required
async def rate_on_page(services: Services, request: Request) -> Response:
    account: Account = request.state.account
    ticket = await anyio.to_thread.run_sync(
        tickets.get_for, services.engine, account, request.path_params["reference"]
    )
    if ticket.account_id != account.id:  # support reads the opinion, never gives it
        raise BadRequest("Seul l'établissement qui a écrit ce ticket donne son avis.")
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD))
    satisfied = _choice(form.get("avis"))
    await anyio.to_thread.run_sync(
        satisfaction.rate, services.engine, ticket, satisfied, str(form.get("commentaire", ""))
    )
    # No "#avis": a browser skips autofocus when the address has an anchor, and the notice
    # saying the opinion is recorded must take the focus, as after every other action.
    return RedirectResponse(f"/tickets/{ticket.reference}?avis=1", status_code=303)


async def rate_from_mail(services: Services, request: Request) -> Response:
    """The mail's link: the choice made by the click, confirmed (and commented) on this page;
    a link checker opening it changes nothing."""
    reference = request.path_params["reference"]
    if not satisfaction.token_valid(services.secret_key, reference, request.path_params["token"]):
        raise NotFound(LINK_GONE)
    ticket = await anyio.to_thread.run_sync(_ticket, services, reference)
    saved = False
    if request.method == "POST":
        form = await request.form()
        check_csrf(request, form.get(CSRF_FIELD))
        satisfied = _choice(form.get("avis"))
        await anyio.to_thread.run_sync(
            satisfaction.rate, services.engine, ticket, satisfied,
            str(form.get("commentaire", "")),
        )  # fmt: skip
        saved = True
    rating = await anyio.to_thread.run_sync(satisfaction.rating_of, services.engine, ticket.id)
    chosen = request.query_params.get("note", "")
    return services.render(
        request, "rating.html", ticket=ticket, rating=rating, saved=saved,
        chosen=chosen if chosen in CHOICES else ("satisfait" if rating and rating.satisfied
                                                  else "pas_satisfait" if rating else ""),
    )  # fmt: skip


def _ticket(services: Services, reference: str) -> tickets.Ticket:
    """The ticket the link names, read as its establishment would (no internal notes)."""
    from kb.helpdesk import accounts

    owner_id = tickets.owner_of(services.engine, reference)
    if owner_id is None:
        raise NotFound(LINK_GONE)
    owner = accounts.get(services.engine, owner_id)
    assert owner is not None
    return tickets.get_for(services.engine, owner, reference)
