"""The agents' workspace: assignment, views and counters, presence, held replies."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import (
    SUPPORT_FILES,
    Page,
    Web,
    agent,
    client_for,
    help_desk,
    log_in,
    outbox,
    read,
    school_ticket,
)
from starlette.testclient import TestClient

from kb import tables
from kb.helpdesk import accounts, replies, tickets
from kb.helpdesk.attachments import ReceivedForm


@pytest.fixture
def web(make_web: Callable[..., Web], database_url: str) -> Web:
    web = help_desk(make_web(SUPPORT_FILES, database_url=database_url))
    agent(web, email="alex@cpro.fr")
    with web.services.engine.begin() as connection:  # two agents, two names
        connection.execute(
            sa.update(tables.accounts).where(tables.accounts.c.login == "alex@cpro.fr")
            .values(first_name="Alex", last_name="Agent")
        )  # fmt: skip
    return web


def seen_on(page: Page) -> str:
    """The last message the reply form says its agent saw."""
    return page.field(name="dernier_message")["value"]


def send(client: TestClient, reference: str, text: str, seen: str | None = None) -> str:
    data = {"csrf": client.cookies["kb_csrf"], "message": text, "statut_apres": "en_attente"}
    if seen is not None:
        data["dernier_message"] = seen
    response = client.post(
        f"/support/tickets/{reference}/reponses", data=data, files=[("fichiers", ("", b"", "x"))]
    )
    assert response.status_code == 303, response.text
    return response.headers["location"]


def ids(web: Web) -> dict[str, int]:
    return {a.login: a.id for a in accounts.all_accounts(web.services.engine)}


def test_views_counters_and_the_first_reply_assigns(web: Web) -> None:
    log_in(web)
    first = school_ticket(web, "Mot de passe perdu")
    second = school_ticket(web, "Renouvellement", "abonnement")
    sam = client_for(web, "sam@cpro.fr")
    queue = read(sam, "/support", vue="non_assignes")
    assert first in queue.text and second in queue.text
    assert ("/support?vue=non_assignes", "Non assignés 2 à traiter") in queue.links
    assert "Aucun ticket ne correspond" in read(sam, "/support", vue="mes").text

    send(sam, first, "Voici la marche à suivre.")
    page = read(sam, f"/support/tickets/{first}").text
    assert "Sam Support a pris le ticket en charge" in page
    assert "Vous traitez ce ticket." in page
    mine = read(sam, "/support", vue="mes")
    assert first in mine.text and second not in mine.text
    assert ("/support?vue=mes", "Mes tickets 1 à traiter") in mine.links
    assert second in read(sam, "/support", vue="non_assignes").text
    assert first not in read(sam, "/support", vue="non_assignes").text
    # Each agent's open tickets, and a colleague's queue from their counter.
    sam_id, alex_id = ids(web)["sam@cpro.fr"], ids(web)["alex@cpro.fr"]
    assert (f"/support?vue=tous&agent={sam_id}", "Sam Support 1") in mine.links
    assert (f"/support?vue=tous&agent={alex_id}", "Alex Agent 0") in mine.links
    assert first in read(sam, "/support", vue="tous", agent=sam_id).text

    alex = client_for(web, "alex@cpro.fr")  # a second reply does not take the ticket away
    send(alex, first, "Je complète.", seen_on(read(alex, f"/support/tickets/{first}")))
    assert read(alex, f"/support/tickets/{first}").terms["Attribué à"] == "Sam Support"


def test_handing_over_is_recorded_in_the_thread(web: Web) -> None:
    log_in(web)
    reference = school_ticket(web)
    sam = client_for(web, "sam@cpro.fr")
    token, everyone = sam.cookies["kb_csrf"], ids(web)
    url = f"/support/tickets/{reference}/attribution"
    assert sam.post(url, data={"csrf": token, "agent": "moi"}).status_code == 303
    handed = sam.post(url, data={"csrf": token, "agent": str(everyone["alex@cpro.fr"])})
    assert handed.headers["location"] == f"/support/tickets/{reference}?assigne=1"
    page = read(sam, handed.headers["location"]).text
    assert "Attribution enregistrée." in page
    assert page.index("Sam Support a pris le ticket en charge") < page.index(
        "Sam Support a confié le ticket à Alex Agent"
    )
    assert "Traité par Alex Agent." in page
    assert reference in read(client_for(web, "alex@cpro.fr"), "/support", vue="mes").text
    sam.post(url, data={"csrf": token, "agent": ""})
    assert (
        "Sam Support a remis le ticket dans les non assignés"
        in read(sam, f"/support/tickets/{reference}").text
    )
    # Not an agent, not a number, nobody: a French message, and nothing changes.
    for wrong in (str(everyone["0750654D"]), "abc", "99999999", "-1"):
        refused = sam.post(url, data={"csrf": token, "agent": wrong})
        assert refused.status_code == 400
        assert "Choisissez un agent du support dans la liste." in Page(refused).text
    assert sam.post(url, data={"csrf": "x", "agent": "moi"}).status_code == 403
    # The establishment never sees who handles its ticket, nor these events.
    assert "confié" not in read(web.client, f"/tickets/{reference}").text


def test_statuses_read_right_from_each_side(web: Web) -> None:
    log_in(web)
    reference = school_ticket(web)
    sam = client_for(web, "sam@cpro.fr")
    send(sam, reference, "Pouvez-vous m'envoyer une capture ?")
    assert "En attente de votre réponse" in read(web.client, f"/tickets/{reference}").text
    page = read(sam, f"/support/tickets/{reference}").text
    assert "En attente de l'établissement" in page
    assert "En attente de votre réponse" not in page


def test_a_reply_after_a_colleagues_reply_is_held_side_by_side(web: Web) -> None:
    log_in(web)
    reference = school_ticket(web)
    sam, alex = client_for(web, "sam@cpro.fr"), client_for(web, "alex@cpro.fr")
    seen_by_sam = seen_on(read(sam, f"/support/tickets/{reference}"))
    seen_by_alex = seen_on(read(alex, f"/support/tickets/{reference}"))
    send(alex, reference, "Réinitialisez depuis la page de connexion.", seen_by_alex)
    mails = len(outbox(web))

    held_at = send(sam, reference, "Cliquez sur Mot de passe oublié.", seen_by_sam)
    assert "retenue=" in held_at
    page = read(sam, held_at)
    assert "Un autre agent a répondu pendant que vous écriviez" in page.text
    held = page.context["held"]  # the colleague's reply beside the held one, to compare
    assert [m.body for m in held.others] == ["Réinitialisez depuis la page de connexion."]
    assert "Alex Agent" in held.others[0].author and "Alex Agent" in page.text
    held_form = page.field(id="retenue-message")
    assert held_form["value"] == "Cliquez sur Mot de passe oublié."
    assert len(outbox(web)) == mails  # nothing went to the establishment
    school = read(web.client, f"/tickets/{reference}").text
    assert "Cliquez sur Mot de passe oublié." not in school

    form = {
        "csrf": sam.cookies["kb_csrf"], "action": "envoyer", "statut_apres": "en_attente",
        "message": "Comme mon collègue l'indique : cliquez sur Mot de passe oublié.",
        "dernier_message": seen_on(page),
    }  # fmt: skip
    action = f"/support/tickets/{reference}/retenues/{held.reply.id}"
    assert page.having("form", action=action)
    sent = sam.post(action, data=form)
    assert sent.headers["location"] == f"/support/tickets/{reference}?repondu=1#fil"
    school = read(web.client, f"/tickets/{reference}").text
    assert school.index("Réinitialisez") < school.index("Comme mon collègue l'indique")
    assert len(outbox(web)) == mails + 1
    again = sam.post(action, data=form)  # sent once: a second click finds nothing to send
    assert again.status_code == 404 and "retenue n'existe plus" in Page(again).text


def test_a_held_reply_given_up_goes_with_its_attachments(web: Web) -> None:
    log_in(web)
    reference = school_ticket(web)
    sam, alex = client_for(web, "sam@cpro.fr"), client_for(web, "alex@cpro.fr")
    seen = seen_on(read(sam, f"/support/tickets/{reference}"))
    send(alex, reference, "Déjà répondu.", seen)
    held_at = sam.post(
        f"/support/tickets/{reference}/reponses",
        data={"csrf": sam.cookies["kb_csrf"], "message": "Moi aussi.", "dernier_message": seen},
        files=[("fichiers", ("notice.pdf", b"%PDF-1.4 notice", "application/pdf"))],
    ).headers["location"]
    page = read(sam, held_at)
    assert "Pièces jointes gardées : notice.pdf." in page.text
    stored = web.settings.data_dir / "attachments"

    def kept() -> list[Path]:
        return [
            p for p in stored.rglob("*") if p.is_file() and p.relative_to(stored).parts[0] != "tmp"
        ]

    files_before = kept()
    action = f"/support/tickets/{reference}/retenues/{page.context['held'].reply.id}"
    assert page.having("form", action=action)
    gone = sam.post(action, data={"csrf": sam.cookies["kb_csrf"], "action": "abandonner"})
    assert gone.headers["location"] == f"/support/tickets/{reference}?abandonne=1"
    assert "Votre réponse retenue est supprimée" in read(sam, gone.headers["location"]).text
    files_after = kept()
    assert len(files_after) == len(files_before) - 1
    assert "Moi aussi." not in read(sam, f"/support/tickets/{reference}").text
    # Another agent cannot send or drop someone else's held reply.
    assert alex.post(action, data={"csrf": alex.cookies["kb_csrf"], "action": "abandonner"}
                     ).status_code == 404  # fmt: skip


def test_of_agents_sending_at_the_same_moment_one_goes_and_the_others_are_held(
    web: Web,
) -> None:
    log_in(web)
    reference = school_ticket(web)
    engine, store = web.services.engine, web.services.store
    team = [agent(web, email=f"agent{n}@cpro.fr") for n in range(4)]
    ticket = tickets.get_for(engine, team[0], reference)
    seen = ticket.last_message_id
    results: list[replies.Sent] = []
    start = threading.Barrier(len(team))

    def answer(who: accounts.Account) -> None:
        start.wait()
        results.append(
            replies.reply(
                engine,
                store,
                ticket,
                who,
                ReceivedForm({"message": "Réponse."}),
                delay=web.services.answer_delay,
                limit=1024,
                seen=seen,
            )
        )

    threads = [threading.Thread(target=answer, args=(who,)) for who in team]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.held for r in results) == [False, True, True, True]
    public = tickets.get_for(engine, team[0], reference).messages
    assert [m.body for m in public] == ["Je ne peux plus me connecter.", "Réponse."]


def test_colleagues_on_the_ticket_are_shown(web: Web) -> None:
    log_in(web)
    reference = school_ticket(web)
    sam, alex = client_for(web, "sam@cpro.fr"), client_for(web, "alex@cpro.fr")
    assert "consulte ce ticket" not in read(sam, f"/support/tickets/{reference}").text
    alex.get(f"/support/tickets/{reference}")
    assert "Alex Agent consulte ce ticket" in read(sam, f"/support/tickets/{reference}").text
    typing = alex.post(
        f"/support/tickets/{reference}/presence", headers={"x-csrf-token": alex.cookies["kb_csrf"]}
    )
    assert typing.status_code == 204
    assert "Alex Agent écrit une réponse" in read(sam, f"/support/tickets/{reference}").text
    assert alex.post(f"/support/tickets/{reference}/presence").status_code == 403
    log_in(web)  # an establishment can neither watch nor be counted
    assert web.client.get(f"/support/tickets/{reference}/presence").status_code == 403


def test_the_context_beside_the_thread(web: Web) -> None:
    log_in(web)
    resolved = school_ticket(web, "Ancienne demande")
    still_open = school_ticket(web, "Facture", "abonnement")
    with web.services.engine.begin() as connection:
        connection.execute(
            sa.update(tables.tickets)
            .where(tables.tickets.c.reference == resolved)
            .values(status="resolu")
        )
        long_ago = accounts.now() - dt.timedelta(hours=3)  # not "in the hour before"
        connection.execute(
            sa.insert(tables.article_reads).values(account_id=ids(web)["0750654D"], slug="renouveler",
                                               at=long_ago)
        )  # fmt: skip
    assert web.client.get("/articles/mdp-perdu", follow_redirects=True).status_code == 200
    web.services.usage.flush()
    reference = school_ticket(web, "Toujours bloqué")
    page = read(client_for(web, "sam@cpro.fr"), f"/support/tickets/{reference}")
    beside = page.context["context"]
    assert (beside.establishment, beside.uai, beside.contact) == (
        "Lycée Louis-le-Grand", "0750654D", "Marie Curie",
    )  # fmt: skip
    assert "Lycée Louis-le-Grand (0750654D)" in page.text and "Contact : Marie Curie" in page.text
    others = [t.reference for t in beside.other_tickets]
    assert others == [still_open, resolved]  # open first, and not this one
    for other in others:
        assert (f"/support/tickets/{other}", other) in page.links
    assert [a["title"] for a in beside.read_before] == ["J'ai oublié mon mot de passe"]
    assert ("/articles/mot-de-passe-oublie", "J'ai oublié mon mot de passe") in page.links
    # Agents' reads are not an establishment's: nothing is recorded for them.
    sam = client_for(web, "sam@cpro.fr")
    sam.get("/articles/renouveler")
    web.services.usage.flush()
    with web.services.engine.connect() as connection:
        readers = connection.execute(sa.select(tables.article_reads.c.account_id)).scalars().all()
    assert set(readers) == {ids(web)["0750654D"]}


def test_refused_replies_say_so_at_their_field_and_keep_what_was_typed(web: Web) -> None:
    log_in(web)
    reference = school_ticket(web)
    sam, alex = client_for(web, "sam@cpro.fr"), client_for(web, "alex@cpro.fr")
    token = sam.cookies["kb_csrf"]
    seen_by_sam = seen_on(read(sam, f"/support/tickets/{reference}"))
    empty = Page(sam.post(f"/support/tickets/{reference}/reponses", data={
        "csrf": token, "message": "  ", "interne": "oui", "statut_apres": "resolu",
        "dernier_message": seen_by_sam}, files=[("fichiers", ("", b"", "x"))],
        headers={"accept-encoding": "identity"}))  # fmt: skip
    assert empty.status == 400 and empty.template == "support_ticket.html"
    assert empty.context["errors"] == {"message": "Écrivez votre réponse ou joignez un fichier."}
    (message,) = empty.having("textarea", id="message")
    assert message["aria-invalid"] == "true" and message["aria-describedby"] == "message-erreur"
    assert "Erreur : Écrivez votre réponse ou joignez un fichier." in empty.text
    assert empty.having("input", id="interne")[0].get("checked") is not None  # as it was sent
    assert empty.having("option", value="resolu")[0].get("selected") is not None

    seen_by_alex = seen_on(read(alex, f"/support/tickets/{reference}"))
    send(alex, reference, "Réinitialisez depuis la page de connexion.", seen_by_alex)
    held_at = send(sam, reference, "Cliquez sur Mot de passe oublié.", seen_by_sam)
    action = f"/support/tickets/{reference}/retenues/{read(sam, held_at).context['held'].reply.id}"
    refused = Page(sam.post(action, data={
        "csrf": token, "action": "envoyer", "message": "", "statut_apres": "resolu",
        "vu": seen_by_sam, "dernier_message": seen_by_sam}, headers={"accept-encoding": "identity"}))  # fmt: skip
    assert refused.status == 400
    # The held reply's form again, beside the colleague's reply, its field marked.
    assert refused.context["held_errors"] == {
        "retenue-message": "Écrivez votre réponse ou joignez un fichier."
    }
    assert refused.context["errors"] == {}
    assert "Un autre agent a répondu pendant que vous écriviez" in refused.text
    assert "Réinitialisez depuis la page de connexion." in refused.text
    (field,) = refused.having("textarea", id="retenue-message")
    assert field["aria-invalid"] == "true"
    assert field["aria-describedby"] == "retenue-message-erreur"
    assert refused.having("input", name="statut_apres")[0]["value"] == "resolu"
