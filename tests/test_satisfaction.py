"""Satisfaction: the establishment rates a resolved ticket (page or mail link); resolved
tickets close after KB_CLOSE_AFTER_DAYS business days; /rapport per category and agent."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable

import anyio
import pytest
import sqlalchemy as sa
from conftest import (
    SUPPORT_FILES,
    Page,
    Web,
    activated_account,
    agent,
    as_agent,
    log_in,
    outbox,
    page,
    school_ticket,
)

from kb import tables
from kb.config import Settings, SettingsError
from kb.helpdesk import accounts, satisfaction
from kb.web import app as web_app


@pytest.fixture
def web(make_web: Callable[..., Web], database_url: str) -> Web:
    web = make_web(SUPPORT_FILES, database_url=database_url)
    activated_account(web)
    activated_account(web, "0750655" + accounts.uai_check_letter("0750655"), email="b@example.fr")
    agent(web)
    return web


def resolved_ticket(web: Web, subject: str = "Mot de passe perdu") -> str:
    """A ticket of the Lycée, answered and resolved by Sam; the Lycée logged in again."""
    log_in(web)
    reference = school_ticket(web, subject)
    as_agent(web)
    token = web.client.cookies["kb_csrf"]
    web.client.post(f"/support/tickets/{reference}/reponses",
                    data={"csrf": token, "message": "Voici.", "statut_apres": "resolu"},
                    files=[("fichiers", ("", b"", "x"))])  # fmt: skip
    web.client.cookies.clear()
    log_in(web)
    return reference


def rate(web: Web, reference: str, choice: str, comment: str = "") -> object:
    return web.client.post(
        f"/tickets/{reference}/avis",
        data={"csrf": web.client.cookies["kb_csrf"], "avis": choice, "commentaire": comment},
    )


def test_the_establishment_rates_its_resolved_ticket_and_the_report_shows_it(web: Web) -> None:
    log_in(web)
    open_one = school_ticket(web, "Encore ouvert")
    refused = rate(web, open_one, "satisfait")
    assert refused.status_code == 400  # type: ignore[attr-defined]
    assert "quand le ticket sera résolu" in Page(refused).text  # type: ignore[arg-type]
    reference = resolved_ticket(web)
    assert (
        "Êtes-vous satisfait de la réponse du support ?" in page(web, f"/tickets/{reference}").text
    )
    assert rate(web, reference, "peut-etre").status_code == 400  # type: ignore[attr-defined]
    done = rate(web, reference, "pas_satisfait", "Trop long.")
    assert done.headers["location"] == f"/tickets/{reference}?avis=1"  # type: ignore[attr-defined]
    thanked = page(web, f"/tickets/{reference}", avis=1).text
    assert "Merci : votre avis est enregistré." in thanked
    assert "Votre avis : « Pas satisfait » — Trop long." in thanked
    rate(web, reference, "satisfait", "Finalement réglé.")  # an opinion can change

    as_agent(web)
    aside = page(web, f"/support/tickets/{reference}")
    assert aside.context["rating"].label == "Satisfait"
    assert "Satisfait : « Finalement réglé. »" in aside.text
    assert rate(web, reference, "satisfait").status_code == 400  # type: ignore[attr-defined]
    report = page(web, "/rapport")
    assert "Satisfaction des établissements" in report.text and "Par catégorie" in report.text
    rows = {
        what: [(t.name, t.satisfied, t.unsatisfied, t.percent) for t in report.context[what]]
        for what in ("satisfaction_per_category", "satisfaction_per_agent")
    }
    assert ("Compte utilisateur", 1, 0, 100) in rows["satisfaction_per_category"]
    assert ("Sam Support", 1, 0, 100) in rows["satisfaction_per_agent"]

    web.client.cookies.clear()  # another establishment: not its ticket
    log_in(web, "0750655" + accounts.uai_check_letter("0750655"))
    assert rate(web, reference, "pas_satisfait").status_code == 404  # type: ignore[attr-defined]


def test_the_mail_link_rates_after_a_confirmation_without_logging_in(web: Web) -> None:
    reference = resolved_ticket(web)
    web.client.cookies.clear()
    token = satisfaction.link_token(web.services.secret_key, reference)
    link = f"/avis/{reference}/{token}"
    opened = web.client.get(f"{link}?note=satisfait")  # what a link checker would do too
    assert opened.status_code == 200
    assert Page(opened).having("input", value="satisfait", required="", checked="")
    assert satisfaction.rating_of(web.services.engine, 1) is None  # nothing yet
    csrf = web.client.cookies["kb_csrf"]
    sent = web.client.post(link, data={"csrf": csrf, "avis": "satisfait", "commentaire": "Merci"})
    assert "Merci : votre avis est enregistré (« Satisfait »)" in Page(sent).text
    for wrong in (f"/avis/{reference}/{'0' * 32}", f"/avis/T-2026-999999/{token}"):
        gone = web.client.get(wrong)
        assert gone.status_code == 404
        assert "Ce lien d'avis n'est pas valable" in Page(gone).text


def test_resolved_tickets_close_after_the_business_days_with_a_notice(web: Web) -> None:
    reference = resolved_ticket(web)
    recent = resolved_ticket(web, "Résolu ce matin")
    engine = web.services.engine
    with engine.begin() as connection:
        connection.execute(
            sa.update(tables.tickets).where(tables.tickets.c.reference == reference)
            .values(resolved_at=accounts.now() - dt.timedelta(days=14))
        )  # fmt: skip
    closed = satisfaction.close_resolved(engine, 5, "FR")
    assert len(closed) == 1 and satisfaction.close_resolved(engine, 5, "FR") == []  # once
    closed_page = page(web, f"/tickets/{reference}")
    assert "Ce ticket est fermé : il était résolu et n'a pas été rouvert." in closed_page.text
    assert closed_page.terms["Statut"] == "Fermé"
    assert "Votre message" not in closed_page.text  # no reply form on a closed ticket
    assert page(web, f"/tickets/{recent}").terms["Statut"] == "Résolu"  # too recent
    token = web.client.cookies["kb_csrf"]
    written = web.client.post(f"/tickets/{reference}/reponses",
                              data={"csrf": token, "message": "Et aussi…"},
                              files=[("fichiers", ("", b"", "x"))])  # fmt: skip
    assert written.status_code == 400
    assert "Ce ticket est fermé : pour une nouvelle question" in Page(written).text
    reopen = web.client.post(
        f"/tickets/{reference}/statut", data={"csrf": token, "statut": "rouvrir"}
    )
    assert reopen.status_code == 400
    assert rate(web, reference, "satisfait").status_code == 303  # type: ignore[attr-defined]
    as_agent(web)
    thread = page(web, f"/support/tickets/{reference}").text
    assert "Ticket fermé automatiquement : résolu et non rouvert" in thread


def test_the_closing_delay_is_checked_at_start() -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"KB_CLOSE_AFTER_DAYS": "0"})
    assert "KB_CLOSE_AFTER_DAYS" in str(error.value)
    assert Settings.from_env({"KB_CLOSE_AFTER_DAYS": "10"}).close_after_days == 10


def choice_in(web: Web, subject: str, label: str) -> str:
    """The path a one-click choice of the last mail with this subject opens."""
    [*_, mail] = [m for m in outbox(web) if subject in str(m["Subject"])]
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    url = re.search(rf"^{label} : (\S+)$", text, re.M)[1]  # type: ignore[index]
    assert url.startswith(web.settings.base_url or "http://")
    return "/" + url.split("/", 3)[3]


def test_the_resolution_mail_rates_with_one_click_without_logging_in(web: Web) -> None:
    reference = resolved_ticket(web)  # answered and resolved at once: one mail, with the answer
    [mail] = [
        m for m in outbox(web) if reference in str(m["Subject"]) and "résolue" in str(m["Subject"])
    ]
    assert mail["Subject"] == f"[{reference}] Demande résolue : Mot de passe perdu"
    assert not [m for m in outbox(web) if "Réponse du support" in str(m["Subject"])]
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Voici." in text and "Êtes-vous satisfait de la réponse du support ?" in text

    web.client.cookies.clear()  # from the mail program: nobody is logged in
    link = choice_in(web, "Demande résolue", "Pas satisfait")
    opened = page(web, link)
    assert opened.status == 200 and opened.template == "rating.html"
    assert opened.context["chosen"] == "pas_satisfait"
    assert satisfaction.rating_of(web.services.engine, 1) is None  # opening records nothing
    path = link.split("?")[0]
    sent = web.client.post(path, data={"csrf": web.client.cookies["kb_csrf"],
                                       "avis": opened.context["chosen"], "commentaire": ""})  # fmt: skip
    assert sent.status_code == 200
    recorded = satisfaction.rating_of(web.services.engine, 1)
    assert recorded is not None and recorded.label == "Pas satisfait"

    satisfied = choice_in(web, "Demande résolue", "Satisfait")
    assert page(web, satisfied).context["chosen"] == "satisfait"


def test_a_forged_or_another_tickets_rating_link_is_refused(web: Web) -> None:
    first = resolved_ticket(web, "Premier")
    second = resolved_ticket(web, "Second")
    web.client.cookies.clear()
    link = choice_in(web, f"[{first}] Demande résolue", "Satisfait").split("?")[0]
    token = link.rsplit("/", 1)[1]
    for wrong in (
        f"/avis/{second}/{token}",  # the first ticket's link, on the second
        f"/avis/{first}/{token[:-1]}{'1' if token[-1] != '1' else '2'}",  # one character changed
        f"/avis/{first}/{token}²",
    ):
        for refused in (web.client.get(wrong), web.client.post(
            wrong, data={"csrf": web.client.cookies.get("kb_csrf", ""), "avis": "satisfait"}
        )):  # fmt: skip
            assert refused.status_code == 404, wrong
            assert "Ce lien d'avis n'est pas valable" in Page(refused).text
    assert satisfaction.rating_of(web.services.engine, 1) is None
    assert satisfaction.rating_of(web.services.engine, 2) is None


def test_resolving_without_a_reply_sends_the_rating_links_once(web: Web) -> None:
    log_in(web)
    reference = school_ticket(web, "Sans réponse")
    as_agent(web)
    csrf = web.client.cookies["kb_csrf"]
    for _ in range(2):  # already resolved the second time: no second mail
        done = web.client.post(
            f"/support/tickets/{reference}/statut", data={"csrf": csrf, "statut": "resolu"}
        )
        assert done.status_code == 303
    [mail] = [m for m in outbox(web) if "Demande résolue" in str(m["Subject"])]
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "considère votre ticket" in text and "comme résolu" in text
    web.client.cookies.clear()
    link = choice_in(web, "Demande résolue", "Satisfait")
    assert page(web, link).context["chosen"] == "satisfait"


def test_a_closed_ticket_is_told_once_even_with_two_replicas_sweeping_at_once(web: Web) -> None:
    reference = resolved_ticket(web)
    rated = resolved_ticket(web, "Déjà noté")
    assert rate(web, rated, "satisfait").status_code == 303  # type: ignore[attr-defined]
    with web.services.engine.begin() as connection:
        connection.execute(
            sa.update(tables.tickets).where(tables.tickets.c.reference.in_([reference, rated]))
            .values(resolved_at=accounts.now() - dt.timedelta(days=14))
        )  # fmt: skip
    other = web_app.create_app(web.settings, background=False)  # a second replica, same database
    replicas = [web.services, other.state.services]
    start = threading.Barrier(len(replicas))
    failures: list[BaseException] = []

    def sweep(services: object) -> None:
        try:
            start.wait()
            anyio.run(web_app.close_resolved, services)
        except BaseException as exc:  # pragma: no cover - shown by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=sweep, args=(s,)) for s in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    other.state.services.engine.dispose()
    assert not failures
    closing = [m for m in outbox(web) if "Ticket fermé" in str(m["Subject"])]
    assert sorted(str(m["Subject"]) for m in closing) == [
        f"[{reference}] Ticket fermé : Mot de passe perdu", f"[{rated}] Ticket fermé : Déjà noté",
    ]  # fmt: skip
    assert all("marie@example.fr" in str(m["To"]) for m in closing)
    by_ref = {str(m["Subject"]).split("]")[0][1:]: m for m in closing}
    text = by_ref[reference].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "est maintenant fermé" in text and "créez un ticket d'aide" in text
    assert by_ref[reference]["In-Reply-To"] and not by_ref[reference]["Reply-To"]
    assert page(web, choice_in(web, f"[{reference}] Ticket fermé", "Satisfait")).status == 200
    rated_text = by_ref[rated].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Satisfait :" not in rated_text  # its opinion is given: not asked again
    anyio.run(web_app.close_resolved, web.services)  # a later sweep: nothing more
    assert len([m for m in outbox(web) if "Ticket fermé" in str(m["Subject"])]) == 2
