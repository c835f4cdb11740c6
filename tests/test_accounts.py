"""Establishment accounts: UAI login, first login, forgotten password, personal space, security."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Literal

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from conftest import (
    PASSWORD,
    Page,
    Web,
    activated_account,
    client_for,
    link_in,
    log_in,
    make_account,
    outbox,
    page,
)

from kb import tables
from kb.helpdesk import accounts, auth, notifications


@pytest.fixture
def web(make_web: Callable[..., Web], database_url: str) -> Web:
    return make_web({}, database_url=database_url)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [("0750654D", "0750654D"), ("0750655e", "0750655E"), (" 0750654d ", "0750654D")],
)
def test_uai_codes_are_normalised(raw: str, normalized: str) -> None:
    assert accounts.normalize_uai(raw) == normalized


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            "075065D",
            "« 075065D » n'est pas un code UAI. Un code UAI compte 7 chiffres suivis d'une lettre, par exemple 0750654D.",
        ),
        (
            "0750654A",
            "Le code UAI « 0750654A » n'existe pas : sa lettre de contrôle ne correspond pas à ses chiffres.",
        ),
    ],
)
def test_bad_uai_codes_say_what_a_uai_looks_like(raw: str, message: str) -> None:
    with pytest.raises(accounts.AccountError) as raised:
        accounts.normalize_uai(raw)
    assert raised.value.message.startswith(message)


def test_login_page_checks_the_uai_before_any_password(web: Web) -> None:
    activated_account(web)
    response = log_in(web, "0750654A", PASSWORD)
    assert response.status_code == 400
    assert "sa lettre de contrôle ne correspond pas" in Page(response).text
    assert Page(response).field(name="identifiant")["value"] == "0750654A"  # typed, kept
    with web.services.engine.connect() as connection:
        events = connection.execute(sa.select(tables.audit.c.event)).scalars().all()
    assert "login_failure" not in events


def test_first_login_from_the_activation_mail(web: Web) -> None:
    account = make_account(web)
    with web.services.engine.begin() as connection:
        notifications.queue_activation(connection, web.settings, account)
    mail = outbox(web)[-1]
    assert mail["To"] == "Marie Curie <marie@example.fr>"
    assert mail["Subject"] == "Activez votre compte CPRO éducation"
    assert mail["Content-Language"] == "fr" and mail["Message-ID"]
    assert mail.get_body(("html",)) is not None
    link = link_in(mail)
    first_login = page(web, link)
    assert "Première connexion : choisissez votre mot de passe" in first_login.text
    token = web.client.cookies["kb_csrf"]
    short = web.client.post(
        link, data={"csrf": token, "mot_de_passe": "court", "confirmation": "court"}
    )
    assert short.status_code == 400 and "au moins 12 caractères" in Page(short).text
    uai = web.client.post(
        link,
        data={"csrf": token, "mot_de_passe": "0750654D-lycee", "confirmation": "0750654D-lycee"},
    )
    assert "ne doit pas contenir le code UAI" in Page(uai).text
    known = web.client.post(
        link, data={"csrf": token, "mot_de_passe": "azertyuiop123", "confirmation": "azertyuiop123"}
    )
    assert "trop connu" in Page(known).text
    done = web.client.post(
        link, data={"csrf": token, "mot_de_passe": PASSWORD, "confirmation": PASSWORD}
    )
    assert done.status_code == 303 and done.headers["location"] == "/espace-personnel?bienvenue=1"
    space = web.client.get(done.headers["location"])
    assert "Votre compte est activé : vous êtes connecté." in Page(space).text
    assert "Marie Curie" in Page(space).text and "0750654D" in Page(space).text
    assert "Lycée Louis-le-Grand" in Page(space).text and "marie@example.fr" in Page(space).text
    again = web.client.get(link)
    assert (
        again.status_code == 410 and "Ce lien a expiré ou a déjà été utilisé." in Page(again).text
    )


def test_expired_link_is_refused(web: Web) -> None:
    account = make_account(web)
    with web.services.engine.begin() as connection:
        raw = accounts.issue_link(connection, account, "activation", hours=1)
        connection.execute(
            sa.update(tables.tokens).values(expires_at=accounts.now() - dt.timedelta(minutes=1))
        )
    response = web.client.get(f"/activation/{raw}")
    assert response.status_code == 410
    assert "Mot de passe oublié ?" in Page(response).text


def test_a_new_link_replaces_the_previous_one(web: Web) -> None:
    account = make_account(web)
    with web.services.engine.begin() as connection:
        first = accounts.issue_link(connection, account, "activation", hours=1)
    with web.services.engine.begin() as connection:
        accounts.issue_link(connection, account, "activation", hours=1)
    assert web.client.get(f"/activation/{first}").status_code == 410


def test_login_logout_and_the_banner(web: Web) -> None:
    activated_account(web)
    anonymous = page(web, "/")
    assert anonymous.link("Se connecter") == "/connexion" and "Déconnexion" not in anonymous.text
    response = log_in(web, "0750654d")
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "kb_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    home = page(web, "/")
    assert home.link("Espace personnel de Marie Curie") == "/espace-personnel"
    assert "Déconnexion" in home.text and home.having("form", action="/deconnexion")
    assert "Se connecter" not in [words for _, words in home.links]
    out = web.client.post("/deconnexion", data={"csrf": web.client.cookies["kb_csrf"]})
    assert out.status_code == 303 and out.headers["location"] == "/connexion?deconnecte=1"
    assert "Vous êtes déconnecté." in page(web, "/connexion?deconnecte=1").text
    assert web.client.get("/espace-personnel").status_code == 303


def test_wrong_password_and_unknown_account_get_the_same_answer(web: Web) -> None:
    activated_account(web)
    wrong = log_in(web, "0750654D", "pas le bon mot de passe")
    unknown = log_in(web, "0750655E", "pas le bon mot de passe")
    assert wrong.status_code == unknown.status_code == 400
    for response in (wrong, unknown):
        assert "Identifiant ou mot de passe incorrect." in Page(response).text


def test_login_rotates_the_session_and_comes_back_where_asked(web: Web) -> None:
    activated_account(web)
    asked = web.client.get("/espace-personnel")
    assert asked.headers["location"] == "/connexion?suivant=/espace-personnel"
    token = web.csrf()
    first = web.client.post(
        "/connexion?suivant=/espace-personnel",
        data={"csrf": token, "identifiant": "0750654D", "mot_de_passe": PASSWORD},
    )
    assert first.headers["location"] == "/espace-personnel"
    old = web.client.cookies["kb_session"]
    log_in(web)
    assert web.client.cookies["kb_session"] != old
    assert auth.session_account(web.services.engine, old.rpartition(".")[0]) is None


def test_no_open_redirect_after_login(web: Web) -> None:
    activated_account(web)
    token = web.csrf()
    response = web.client.post(
        "/connexion?suivant=//evil.example/x",
        data={"csrf": token, "identifiant": "0750654D", "mot_de_passe": PASSWORD},
    )
    assert response.headers["location"] == "/"


def test_forged_session_cookie_is_ignored(web: Web) -> None:
    activated_account(web)
    web.client.cookies.set("kb_session", "forged.value")
    assert page(web, "/").link("Se connecter") == "/connexion"


def test_forgotten_password_answers_the_same_whether_or_not_the_account_exists(web: Web) -> None:
    activated_account(web)
    token = web.csrf()
    existing = web.client.post(
        "/mot-de-passe-oublie", data={"csrf": token, "identifiant": "0750654D"}
    )
    missing = web.client.post(
        "/mot-de-passe-oublie", data={"csrf": token, "identifiant": "0750655E"}
    )
    sentence = "Si un compte correspond à cet identifiant, un e-mail vient d'être envoyé"
    assert sentence in Page(existing).text and sentence in Page(missing).text
    assert len(outbox(web)) == 1
    link = link_in(outbox(web)[0])
    assert "Choisissez un nouveau mot de passe" in web.client.get(link).text
    new = "une toute autre phrase secrète"
    done = web.client.post(link, data={"csrf": token, "mot_de_passe": new, "confirmation": new})
    assert done.status_code == 303
    web.client.cookies.clear()
    assert log_in(web, password=new).status_code == 303
    assert log_in(web, password=PASSWORD).status_code == 400


def test_change_password_logs_out_every_other_session(
    web: Web, make_web: Callable[..., Web]
) -> None:
    activated_account(web)
    log_in(web)
    other = client_for(web, "0750654D")  # a second session, in another browser
    assert other.get("/espace-personnel").status_code == 200
    token = web.client.cookies["kb_csrf"]
    wrong = web.client.post(
        "/espace-personnel/mot-de-passe",
        data={"csrf": token, "actuel": "faux", "nouveau": "x" * 14, "confirmation": "x" * 14},
    )
    assert "Le mot de passe actuel est incorrect." in Page(wrong).text
    new = "encore une autre phrase"
    done = web.client.post(
        "/espace-personnel/mot-de-passe",
        data={"csrf": token, "actuel": PASSWORD, "nouveau": new, "confirmation": new},
    )
    assert done.headers["location"] == "/espace-personnel?mot-de-passe=1"
    assert web.client.get("/espace-personnel").status_code == 200  # this session stays
    assert other.get("/espace-personnel").status_code == 303  # the other one is gone


def test_change_email_is_confirmed_from_the_new_address(web: Web) -> None:
    activated_account(web)
    log_in(web)
    token = web.client.cookies["kb_csrf"]
    bad = web.client.post(
        "/espace-personnel/email", data={"csrf": token, "email": "pas-une-adresse"}
    )
    assert bad.status_code == 400 and "n'est pas une adresse e-mail valide" in Page(bad).text
    assert Page(bad).field(name="email")["value"] == "pas-une-adresse"
    sent = web.client.post(
        "/espace-personnel/email",
        data={"csrf": token, "email": "Nouvelle@Example.fr", "mot_de_passe": PASSWORD},
    )
    assert "Un e-mail de confirmation a été envoyé à nouvelle@example.fr" in Page(sent).text
    [mail] = [m for m in outbox(web) if "nouvelle@example.fr" in m["To"]]
    link = link_in(mail)
    assert "marie@example.fr" in page(web, "/espace-personnel").text  # not changed yet
    confirm = page(web, link)
    assert "nouvelle@example.fr" in confirm.text and "Confirmer cette adresse" in confirm.text
    done = web.client.post(link, data={"csrf": token})
    assert done.headers["location"] == "/espace-personnel?email=1"
    assert "nouvelle@example.fr" in page(web, "/espace-personnel").text
    assert web.client.post(link, data={"csrf": token}).status_code == 410


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/connexion", {"identifiant": "0750654D", "mot_de_passe": PASSWORD}),
        ("/mot-de-passe-oublie", {"identifiant": "0750654D"}),
        ("/deconnexion", {}),
        ("/espace-personnel/email", {"email": "x@example.fr"}),
        (
            "/espace-personnel/mot-de-passe",
            {"actuel": PASSWORD, "nouveau": "y" * 13, "confirmation": "y" * 13},
        ),
    ],
)
def test_forms_without_csrf_token_are_refused(web: Web, path: str, data: dict[str, str]) -> None:
    activated_account(web)
    log_in(web)
    response = web.client.post(path, data=data)
    assert response.status_code == 403
    assert "Le formulaire a expiré ou ne vient pas de ce site." in Page(response).text


def test_throttling_grows_after_five_failures_and_never_locks_out_for_good(web: Web) -> None:
    activated_account(web)
    engine = web.services.engine
    for _ in range(5):
        assert log_in(web, password="mauvais mot de passe").status_code == 400
    throttled = log_in(web, password=PASSWORD)  # even the right password must wait
    assert throttled.status_code == 429
    assert "Trop de tentatives de connexion. Réessayez dans 2 secondes" in Page(throttled).text
    # Time passes: the wait ends three seconds sooner.
    with engine.begin() as connection:
        for key, until in connection.execute(
            sa.select(tables.throttles.c.key, tables.throttles.c.blocked_until)
        ).all():
            if until is not None:
                connection.execute(
                    sa.update(tables.throttles).where(tables.throttles.c.key == key)
                    .values(blocked_until=until - dt.timedelta(seconds=3))
                )  # fmt: skip
    assert log_in(web, password=PASSWORD).status_code == 303
    with engine.connect() as connection:
        events = (
            connection.execute(sa.select(tables.audit.c.event).order_by(tables.audit.c.id))
            .scalars()
            .all()
        )
    assert events.count("login_failure") == 5
    assert "login_throttled" in events and events[-1] == "login_success"


def uai(number: int) -> str:
    digits = f"{number:07d}"
    return digits + accounts.uai_check_letter(digits)


def test_an_address_spraying_many_accounts_is_throttled_whatever_it_logs_into(web: Web) -> None:
    activated_account(web)
    # Twenty wrong passwords on twenty establishments, with the sprayer's own good password in
    # between: its successes reset nothing of the failures.
    for number in range(750700, 750720):
        assert log_in(web, uai(number), "mauvais mot de passe").status_code == 400
        if number % 5 == 0:
            assert log_in(web).status_code == 303
    throttled = log_in(web, uai(750800), "mauvais mot de passe")
    assert throttled.status_code == 429 and "Trop de tentatives" in Page(throttled).text
    assert log_in(web).status_code == 429  # from this address, even the right password waits


def test_disabled_account_cannot_log_in_and_loses_its_sessions(web: Web) -> None:
    activated_account(web)
    log_in(web)
    accounts.disable(web.services.engine, "0750654D")
    assert web.client.get("/espace-personnel").status_code == 303
    assert log_in(web).status_code == 400


class CountingHasher(PasswordHasher):
    """argon2id at test costs, counting the verifications: the expensive step of a login."""

    verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        CountingHasher.verified += 1
        return super().verify(hash, password)


def test_unknown_disabled_and_not_activated_accounts_get_a_wrong_password_s_answer(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        accounts, "_hasher", CountingHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    activated_account(web)
    make_account(web, "0750655E", email="jean@example.fr")  # never activated
    activated_account(web, "0750656F", email="paul@example.fr")
    accounts.disable(web.services.engine, "0750656F")
    pages = {}
    for case, login in (("wrong password", "0750654D"), ("not activated", "0750655E"),
                        ("disabled", "0750656F"), ("unknown", "0750657G")):  # fmt: skip
        before = CountingHasher.verified
        response = log_in(web, login, "nimporte quoi du tout")
        assert response.status_code == 400, case
        assert CountingHasher.verified == before + 1, f"{case}: the same work as a password"
        pages[case] = response.text.replace(f'value="{login}"', "")
        assert "Identifiant ou mot de passe incorrect." in Page(response).text, case
    assert len(set(pages.values())) == 1
    # The hint goes to the owner of the account not yet activated, by e-mail.
    [hint] = outbox(web)
    assert hint["To"] == "Marie Curie <jean@example.fr>" and "Activez" in hint["Subject"]
    first = link_in(hint)
    assert web.client.get(first).status_code == 200


def test_activation_hints_are_limited_per_account(web: Web) -> None:
    make_account(web)
    for _ in range(6):
        assert log_in(web, password="nimporte quoi du tout").status_code in (400, 429)
    assert len(outbox(web)) == 3  # three an hour: nobody's mailbox is bombed


def test_session_cookie_is_secure_behind_https(make_web: Callable[..., Web]) -> None:
    web = make_web({}, secure_cookies=True)
    activated_account(web)
    assert "Secure" in log_in(web).headers["set-cookie"]


def test_passwords_are_hashed_with_argon2id_at_the_recommended_cost(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.undo()  # the real hasher, not the test-sized one
    from argon2 import PasswordHasher, Type
    from argon2.profiles import RFC_9106_LOW_MEMORY

    hasher = accounts._hasher
    assert isinstance(hasher, PasswordHasher) and hasher.type is Type.ID
    assert hasher.time_cost >= RFC_9106_LOW_MEMORY.time_cost
    assert hasher.memory_cost >= RFC_9106_LOW_MEMORY.memory_cost
