"""The support console, linking articles, the editors' report, kb new and kb stats."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from conftest import (
    SUPPORT_FILES,
    Page,
    Web,
    agent,
    as_agent,
    log_in,
    outbox,
    page,
    school_ticket,
)

from kb import tables
from kb.helpdesk import accounts


@pytest.fixture
def web(desk: Web) -> Web:
    return desk


@pytest.mark.parametrize(
    "path", ["/support", "/support/tickets/T-2026-000001", "/rapport", "/rapport?depuis=2026-01-01"]
)
def test_establishments_get_a_403_on_support_and_editor_pages(web: Web, path: str) -> None:
    log_in(web)
    response = web.client.get(path)
    assert response.status_code == 403
    assert "Cette page est réservée à l'équipe d'assistance et aux éditeurs." in Page(response).text


def test_editors_see_the_report_but_not_the_queue(web: Web) -> None:
    agent(web, role="editeur", email="ed@cpro.fr")
    web.client.cookies.clear()
    log_in(web, "ed@cpro.fr")
    assert web.client.get("/rapport").status_code == 200
    assert web.client.get("/support").status_code == 403


def test_anonymous_visitors_are_sent_to_the_login_page(web: Web) -> None:
    assert web.client.get("/support").headers["location"] == "/connexion?suivant=/support"


def test_the_queue_by_due_date_with_filters_counts_and_overdue(web: Web) -> None:
    log_in(web)
    first = school_ticket(web, "Mot de passe perdu")
    second = school_ticket(web, "Renouvellement", "abonnement")
    with web.services.engine.begin() as connection:  # the second one is late
        connection.execute(
            sa.update(tables.tickets).where(tables.tickets.c.reference == second)
            .values(due_at=accounts.now() - dt.timedelta(hours=1))
        )  # fmt: skip
    as_agent(web)
    queue = page(web, "/support")
    assert [t.reference for t in queue.context["queue"].tickets] == [second, first]  # urgent first
    assert queue.text.index(second) < queue.text.index(first)
    assert "En retard" in queue.text and queue.having("tr", class_="overdue")
    assert ("/support?vue=tous&statut=nouveau", "Nouveau 2") in queue.links
    assert first not in page(web, "/support", categorie="abonnement").text
    assert second not in page(web, "/support", q=first).text
    assert first in page(web, "/support", q="connecter").text  # words of the message
    assert "Aucun ticket ne correspond" in page(web, "/support?statut=resolu").text


def test_agent_replies_with_a_linked_article_and_the_establishment_sees_it(web: Web) -> None:
    log_in(web)
    reference = school_ticket(web)
    as_agent(web)
    shown = page(web, f"/support/tickets/{reference}", article="mot de passe")
    assert "Marie Curie" in shown.text and "Lycée Louis-le-Grand (0750654D)" in shown.text
    assert "Insérer « J'ai oublié mon mot de passe »" in shown.text
    assert "http://testserver/articles/mot-de-passe-oublie" in shown.text
    token = web.client.cookies["kb_csrf"]
    body = ("Bonjour, voir http://testserver/articles/mdp-perdu (ancienne adresse) "
            "et /articles/renouveler.")  # fmt: skip
    sent = web.client.post(f"/support/tickets/{reference}/reponses",
                           data={"csrf": token, "message": body, "statut_apres": "en_attente"},
                           files=[("fichiers", ("", b"", "x"))])  # fmt: skip
    assert sent.headers["location"] == f"/support/tickets/{reference}?repondu=1"
    with web.services.engine.connect() as connection:
        linked = connection.execute(sa.select(tables.article_links.c.slug)).scalars().all()
    assert sorted(linked) == ["mot-de-passe-oublie", "renouveler"]  # the old slug resolved
    mail = outbox(web)[-1]
    assert mail["To"] == "Marie Curie <marie@example.fr>"
    assert mail["Subject"] == f"[{reference}] Réponse du support : Mot de passe perdu"
    web.client.cookies.clear()
    log_in(web)
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert body in text  # the answer itself, in the mail
    thread = page(web, f"/tickets/{reference}")
    assert "En attente de votre réponse" in thread.text
    assert (
        thread.link("http://testserver/articles/mdp-perdu")
        == "http://testserver/articles/mdp-perdu"
    )
    assert thread.link("/articles/renouveler") == "/articles/renouveler"
    followed = web.client.get("/articles/mdp-perdu")
    assert (
        followed.status_code == 301
        and followed.headers["location"] == "/articles/mot-de-passe-oublie"
    )


def test_internal_notes_stay_internal(web: Web) -> None:
    log_in(web)
    reference = school_ticket(web)
    as_agent(web)
    token = web.client.cookies["kb_csrf"]
    before = len(outbox(web))
    web.client.post(f"/support/tickets/{reference}/reponses",
                    data={"csrf": token, "message": "Client déjà relancé hier.", "interne": "oui"},
                    files=[("fichiers", ("", b"", "x"))])  # fmt: skip
    assert "Note interne — Sam Support" in page(web, f"/support/tickets/{reference}").text
    assert len(outbox(web)) == before  # nobody is told
    web.client.cookies.clear()
    log_in(web)
    thread = page(web, f"/tickets/{reference}").text
    assert "Client déjà relancé hier." not in thread and "Nouveau" in thread


def test_agent_changes_the_status_and_downloads_attachments(web: Web) -> None:
    log_in(web)
    reference = school_ticket(web)
    as_agent(web)
    token = web.client.cookies["kb_csrf"]
    done = web.client.post(
        f"/support/tickets/{reference}/statut", data={"csrf": token, "statut": "en_cours"}
    )
    assert "Statut modifié." in page(web, done.headers["location"]).text
    link = page(web, f"/support/tickets/{reference}").link("capture.png")
    assert web.client.get(link).content == b"\x89PNG"
    bad = web.client.post(
        f"/support/tickets/{reference}/statut", data={"csrf": token, "statut": "perdu"}
    )
    assert bad.status_code == 400


def test_report_figures_match_the_events(
    web: Web, cli: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KB_DATA_DIR", str(web.settings.data_dir))
    monkeypatch.setenv("KB_DATABASE_URL", web.settings.database_url)
    usage = web.services.usage
    for _ in range(3):
        web.client.get("/recherche", params={"q": "mot de passe"})
    web.client.get("/recherche", params={"q": "xylophone"})
    web.client.get("/articles/renouveler")
    web.client.get("/articles/renouveler")
    token = web.csrf()
    web.client.post("/articles/renouveler/vote", data={"csrf": token, "utile": "non"})
    log_in(web)
    web.client.get("/articles/renouveler?depuis=ticket")  # a suggestion opened, no ticket after
    web.client.get("/articles/mot-de-passe-oublie?depuis=ticket")
    school_ticket(web)  # ... and this one was followed by a ticket
    usage.flush()
    as_agent(web)
    [ticket] = page(web, "/support").context["queue"].tickets
    reference = ticket.reference
    replied = web.client.post(f"/support/tickets/{reference}/reponses",
                              data={"csrf": web.client.cookies["kb_csrf"], "message": "Voir /articles/renouveler"},
                              files=[("fichiers", ("", b"", "x"))])  # fmt: skip
    assert replied.status_code == 303, replied.text
    shown = page(web, "/rapport")
    assert shown.having("svg", class_="chart", role="img") and shown.having("polyline")
    assert "Recherches : 4, Recherches sans résultat : 1, Tickets créés : 1" in shown.text
    # The chart's data as a table, each series told apart by its line, not its colour alone.
    assert any("stroke-dasharray" in line for line in shown.having("polyline"))
    assert "Recherches, recherches sans résultat et tickets créés, par jour" in shown.text
    daily = shown.context["report"].daily
    assert len(daily) == 30  # one row per day of the period
    assert len(shown.having("th", scope="row")) >= 30
    assert [sum(d[k] for d in daily) for k in ("searches", "no_result", "tickets")] == [4, 1, 1]
    # Every table is named by its title.
    tables_shown = shown.having("table", class_="tickets")
    assert tables_shown and all("aria-labelledby" in t or "aria-label" in t for t in tables_shown)
    result = cli("stats", "--json", "--index", web.site.index)
    assert result.status == 0, result.err  # type: ignore[attr-defined]
    data = json.loads(result.out)  # type: ignore[attr-defined]
    assert data["searches"][0] == {
        "query": "mot de passe",
        "count": 3,
        "results": data["searches"][0]["results"],
    }
    assert [(r["query"], r["count"]) for r in data["no_result"]] == [("xylophone", 1)]
    assert data["most_viewed"][0] == {
        "slug": "renouveler",
        "title": "Renouveler l'abonnement",
        "views": 3,
    }
    assert data["helpfulness"] == [
        {"slug": "renouveler", "title": "Renouveler l'abonnement", "yes": 0, "no": 1}
    ]
    assert data["most_linked"] == [
        {"slug": "renouveler", "title": "Renouveler l'abonnement", "links": 1}
    ]
    assert {r["category"]: r["tickets"] for r in data["tickets_per_category"]}[
        "compte-utilisateur"
    ] == 1
    suggestions = {r["slug"]: (r["opens"], r["avoided"]) for r in data["suggestions"]}
    # Both opens were followed within the hour by the ticket the same account created.
    assert suggestions == {"renouveler": (1, 0), "mot-de-passe-oublie": (1, 0)}
    assert sum(day["searches"] for day in data["daily"]) == 4
    text = cli("stats", "--index", web.site.index).out  # type: ignore[attr-defined]
    assert "Recherches sans résultat" in text
    assert re.search(r"\n  Recherche +Fois +Dernière fois\n  xylophone +1 +\d\d/\d\d/\d{4}", text)


def test_report_period_is_checked_at_its_fields(web: Web) -> None:
    as_agent(web)
    malformed = page(web, "/rapport", depuis="hier")
    assert malformed.status == 400 and malformed.template == "report.html"
    assert malformed.context["errors"] == {"depuis": "La date « hier » doit s'écrire AAAA-MM-JJ."}
    backwards = page(web, "/rapport", depuis="2026-12-01", jusqu_au="2026-11-01")
    assert backwards.status == 400
    assert backwards.context["errors"] == {
        "depuis": "La date de début doit précéder la date de fin."
    }
    assert "Erreur : La date de début doit précéder la date de fin." in backwards.text
    (field,) = backwards.having("input", id="depuis")
    assert field["aria-invalid"] == "true" and field["aria-describedby"] == "depuis-erreur"
    assert field["value"] == "2026-12-01"  # as typed; the last days are shown meanwhile
    assert "Cette période n'est pas affichée" in backwards.text
    too_long = page(web, "/rapport", depuis="2024-01-01", jusqu_au="2026-01-01")
    assert too_long.context["errors"] == {"jusqu_au": "Choisissez une période d'un an au plus."}


def test_kb_new_writes_a_draft_and_refuses_a_taken_slug(
    cli: Callable[..., object], make_web: Callable[..., Web]
) -> None:
    web = make_web(SUPPORT_FILES)
    taken = cli("new", "Renouveler", "--category", "abonnement", "--content", web.site.content)
    assert taken.status == 2  # type: ignore[attr-defined]
    assert "l'adresse « renouveler » est déjà prise par" in taken.err  # type: ignore[attr-defined]
    made = cli(
        "new",
        "Exporter la liste des élèves",
        "--category",
        "utilisation",
        "--content",
        web.site.content,
    )
    assert made.status == 0  # type: ignore[attr-defined]
    path = web.site.content / "utilisation/exporter-la-liste-des-eleves.md"
    assert path.read_text(encoding="utf-8").startswith("---\ntitle: Exporter la liste des élèves\n")
    assert "draft: true" in path.read_text(encoding="utf-8")
    again = cli(
        "new",
        "Exporter la liste des élèves !",
        "--category",
        "utilisation",
        "--content",
        web.site.content,
    )
    assert again.status == 2  # type: ignore[attr-defined]
    assert "l'adresse « exporter-la-liste-des-eleves » est déjà prise par" in again.err  # type: ignore[attr-defined]
    assert cli("check", "--content", web.site.content).status == 0  # type: ignore[attr-defined]


def test_agent_reply_takes_a_resumable_upload_and_answers_json(web: Web) -> None:
    log_in(web)
    reference = school_ticket(web)
    as_agent(web)
    uploads = web.services.uploads
    sam = accounts.by_login(web.services.engine, "sam@cpro.fr")
    upload = uploads.create(sam, 5, {"filename": "procedure.pdf"})
    appender = uploads.begin_append(upload, 0, None)
    appender.write(b"%PDF!")
    uploads.end_append(upload, appender)
    uploads.finish_if_complete(upload)
    sent = web.client.post(
        f"/support/tickets/{reference}/reponses",
        data={"csrf": web.client.cookies["kb_csrf"], "message": "Voici la procédure.",
              "televersement": upload.id},
        files=[("fichiers", ("", b"", "x"))],
        headers={"accept": "application/json"},
    )  # fmt: skip
    assert sent.json() == {
        "reference": reference,
        "url": f"/support/tickets/{reference}?repondu=1",
    }
    assert page(web, f"/support/tickets/{reference}").link("procedure.pdf")
    refused = web.client.post(
        f"/support/tickets/{reference}/reponses",
        data={"csrf": web.client.cookies["kb_csrf"], "message": " "},
        files=[("fichiers", ("", b"", "x"))],
        headers={"accept": "application/json"},
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "Écrivez votre réponse ou joignez un fichier."
