"""Canned replies on the agent's ticket page: searched, filled for the ticket, inserted."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from starlette.requests import Request

from kb.clock import in_words
from kb.helpdesk.context import Context
from kb.helpdesk.tickets import Ticket
from kb.knowledge.canned import CannedReply, fill
from kb.web.services import Services

SHOWN = 12
FIELD = "reponse_type_utilisee"  # the reply form's record of what was inserted


@dataclass(frozen=True)
class Offer:
    reply: CannedReply
    text: str  # filled for this ticket


@dataclass(frozen=True)
class Offers:
    query: str
    items: list[Offer]
    total: int
    chosen: Offer | None  # picked without JavaScript (?modele=…): the message starts with it


def library(services: Services) -> list[CannedReply]:
    snapshot = services.snapshot()
    slugs = {a["slug"] for a in snapshot.listing} | set(snapshot.aliases)
    return services.canned.replies(slugs, {c["slug"] for c in snapshot.categories})


def offers(services: Services, request: Request, ticket: Ticket, context: Context) -> Offers:
    """The canned replies matching the search (the ticket's category first), filled."""
    snapshot = services.snapshot()
    base = (services.settings.base_url or str(request.base_url)).rstrip("/")

    def article_link(slug: str) -> str | None:
        found = snapshot.listing_of(snapshot.aliases.get(slug, slug))
        return f"{found['title']} : {base}{found['url']}" if found else None

    values = {
        "etablissement": context.establishment,
        "prenom": context.first_name,
        "reference": ticket.reference,
        "echeance": in_words(ticket.due_at),
    }
    query = request.query_params.get("reponse_type", "").strip()[:200]
    every = library(services)
    matching = [r for r in every if r.matches(query)] if query else every
    matching.sort(key=lambda r: r.category != ticket.category)  # stable: by title within
    items = [Offer(r, fill(r, values, article_link)) for r in matching[:SHOWN]]
    wanted = request.query_params.get("modele", "")
    picked = next((r for r in every if r.slug == wanted), None)
    chosen = Offer(picked, fill(picked, values, article_link)) if picked else None
    return Offers(query, items, len(matching), chosen)


def used(services: Services, named: Iterable[str]) -> list[str]:
    """The canned replies a reply says it used, those that exist."""
    known = {r.slug for r in library(services)}
    return sorted({slug.strip() for slug in named if slug.strip() in known})
