"""Taking an account back: links that die with a new password, e-mail changes that need the
password, warn the old address and can be undone from it, and notices for every change."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage

import pytest
from conftest import (
    PASSWORD,
    Page,
    Web,
    activated_account,
    client_for,
    link_in,
    log_in,
    outbox,
    read,
)
from starlette.testclient import TestClient

from kb.helpdesk import notifications

NEW_PASSWORD = "une toute autre phrase secrète"


@pytest.fixture
def web(make_web: Callable[..., Web], database_url: str) -> Web:
    return make_web({}, database_url=database_url)


def mails_to(web: Web, address: str) -> list[EmailMessage]:
    return [m for m in outbox(web) if address in m["To"]]


def ask_email_change(client: TestClient, email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return client.post(
        "/espace-personnel/email",
        data={"csrf": client.cookies["kb_csrf"], "email": email, "mot_de_passe": password},
    )


def test_a_reset_is_notified_and_every_earlier_link_dies(web: Web) -> None:
    account = activated_account(web)
    engine, settings = web.services.engine, web.settings
    with engine.begin() as connection:
        notifications.queue_email_change(connection, settings, account, "autre@example.fr")
    change_link = link_in(outbox(web)[-1])
    with engine.begin() as connection:
        notifications.queue_reset(connection, settings, account)
    reset_link = link_in(outbox(web)[-1])
    browser = client_for(web)
    done = browser.post(
        reset_link,
        data={"csrf": browser.cookies["kb_csrf"], "mot_de_passe": NEW_PASSWORD,
              "confirmation": NEW_PASSWORD},
    )  # fmt: skip
    assert done.status_code == 303
    notice = outbox(web)[-1]
    assert notice["To"] == "Marie Curie <marie@example.fr>"
    assert notice["Subject"] == "Votre mot de passe CPRO éducation a été modifié"
    # The e-mail change asked for before the new password no longer works.
    assert browser.get(change_link).status_code == 410
    assert browser.get(reset_link).status_code == 410


def test_a_password_change_is_notified_and_ends_a_pending_reset_link(web: Web) -> None:
    account = activated_account(web)
    with web.services.engine.begin() as connection:
        notifications.queue_reset(connection, web.settings, account)
    reset_link = link_in(outbox(web)[-1])
    log_in(web)
    changed = web.client.post(
        "/espace-personnel/mot-de-passe",
        data={"csrf": web.client.cookies["kb_csrf"], "actuel": PASSWORD, "nouveau": NEW_PASSWORD,
              "confirmation": NEW_PASSWORD},
    )  # fmt: skip
    assert changed.status_code == 303
    assert outbox(web)[-1]["Subject"] == "Votre mot de passe CPRO éducation a été modifié"
    assert client_for(web).get(reset_link).status_code == 410


def test_changing_the_email_needs_the_current_password(web: Web) -> None:
    activated_account(web)
    log_in(web)
    for password in ("", "pas le bon mot de passe"):
        refused = ask_email_change(web.client, "pirate@example.net", password)
        assert refused.status_code == 400
        assert "Le mot de passe actuel est incorrect." in Page(refused).text.replace("&#39;", "'")
    assert outbox(web) == []


def test_an_email_change_warns_the_old_address_and_is_confirmed_only_by_its_account(
    web: Web,
) -> None:
    activated_account(web)
    activated_account(web, "0750655E", email="jean@example.fr")
    thief, other_session = client_for(web, "0750654D"), client_for(web, "0750654D")
    assert ask_email_change(thief, "pirate@example.net").status_code == 200
    [confirmation] = mails_to(web, "pirate@example.net")
    [notice] = mails_to(web, "marie@example.fr")
    assert "pirate@example.net" in notice.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = link_in(confirmation)
    # Another account's session, or none, cannot use the link.
    stranger = client_for(web, "0750655E")
    refused = stranger.post(link, data={"csrf": stranger.cookies["kb_csrf"]})
    assert refused.status_code == 410 and "un autre compte" in Page(refused).text
    assert client_for(web).get(link).status_code == 303  # to the login page
    # Its own account confirms, and every other session of the account ends.
    assert thief.post(link, data={"csrf": thief.cookies["kb_csrf"]}).status_code == 303
    assert "pirate@example.net" in read(thief, "/espace-personnel").text
    assert other_session.get("/espace-personnel").status_code == 303


def test_the_old_address_takes_the_account_back_with_its_cancel_link(web: Web) -> None:
    activated_account(web)
    owner, thief = client_for(web, "0750654D"), client_for(web, "0750654D")
    assert ask_email_change(thief, "pirate@example.net").status_code == 200
    cancel = link_in(mails_to(web, "marie@example.fr")[-1])
    confirm = link_in(mails_to(web, "pirate@example.net")[-1])
    assert thief.post(confirm, data={"csrf": thief.cookies["kb_csrf"]}).status_code == 303
    # The thief changes the password too: the cancel link still works.
    changed = thief.post(
        "/espace-personnel/mot-de-passe",
        data={"csrf": thief.cookies["kb_csrf"], "actuel": PASSWORD, "nouveau": NEW_PASSWORD,
              "confirmation": NEW_PASSWORD},
    )  # fmt: skip
    assert changed.status_code == 303
    mailbox = client_for(web)
    assert "marie@example.fr" in read(mailbox, cancel).text  # a button, not the link, cancels
    done = mailbox.post(cancel, data={"csrf": mailbox.cookies["kb_csrf"]})
    assert done.status_code == 200 and "Changement d'adresse annulé" in Page(done).text.replace(
        "&#39;", "'"
    )
    assert thief.get("/espace-personnel").status_code == 303  # every session ended
    assert owner.get("/espace-personnel").status_code == 303
    # The address is back, and a reset link went to it.
    reset = mails_to(web, "marie@example.fr")[-1]
    assert reset["Subject"] == "Choisir un nouveau mot de passe CPRO éducation"
    assert mailbox.post(cancel, data={"csrf": mailbox.cookies["kb_csrf"]}).status_code == 410
    browser = client_for(web)
    chosen = browser.post(
        link_in(reset),
        data={"csrf": browser.cookies["kb_csrf"], "mot_de_passe": "la mienne à nouveau, enfin",
              "confirmation": "la mienne à nouveau, enfin"},
    )  # fmt: skip
    assert chosen.status_code == 303
    assert "marie@example.fr" in read(browser, "/espace-personnel").text


def test_forgotten_password_mails_are_limited_per_account_with_the_same_answer(web: Web) -> None:
    activated_account(web)
    browser = client_for(web)
    answers = {
        browser.post(
            "/mot-de-passe-oublie",
            data={"csrf": browser.cookies["kb_csrf"], "identifiant": "0750654D"},
        ).text
        for _ in range(6)
    }
    assert len(answers) == 1 and len(outbox(web)) == 3
