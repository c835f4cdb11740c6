"""Every limit under N parallel requests, against a real server on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx2
import sqlalchemy as sa
from conftest import PASSWORD, Web, activated_account, outbox
from test_uploads import serving, session, tus_headers

from kb import tables

PARALLEL = 16


def events(web: Web, *names: str) -> list[str]:
    with web.services.engine.connect() as connection:
        query = sa.select(tables.audit.c.event).where(tables.audit.c.event.in_(names))
        return list(connection.execute(query).scalars())


def until(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    """Mails go after the answer: wait (a little) for the last of them."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the background work never ended"
        time.sleep(0.05)


def checked_within(seconds: float) -> int:
    """How many passwords the login rule lets through in `seconds`: five, then one per wait."""
    allowed, wait, waited = 5, 2.0, 2.0
    while waited <= seconds:  # after 2 s, then 2 + 4 s, then 2 + 4 + 8 s…
        allowed, wait = allowed + 1, wait * 2
        waited += wait
    return allowed


def anonymous_post(base: str, path: str, data: dict[str, str]) -> httpx2.Response:
    with httpx2.Client(base_url=base, timeout=60) as http:
        http.get("/connexion")
        return http.post(path, data={"csrf": http.cookies["kb_csrf"], **data})


def test_parallel_wrong_passwords_are_counted_before_any_is_checked(
    make_web: Callable[..., Web], database_url: str
) -> None:
    web = make_web({}, database_url=database_url)
    activated_account(web)
    with serving(web) as base:
        wrong = {"identifiant": "0750654D", "mot_de_passe": "mauvais mot de passe"}
        started = time.monotonic()
        with ThreadPoolExecutor(PARALLEL) as pool:
            answers = list(pool.map(lambda _: anonymous_post(base, "/connexion", wrong), range(40)))
        statuses = [a.status_code for a in answers]
        assert set(statuses) <= {400, 429}, statuses
        # Five tries per account however they arrive, then one more after each wait (2 s,
        # 4 s…) that has run out on this slow machine: the others were never checked.
        allowed = checked_within(time.monotonic() - started)
        assert statuses.count(400) <= allowed and len(events(web, "login_failure")) <= allowed
        # The right password, while the account's wait runs, waits too (on a machine slow
        # enough for the wait to be over already, there is nothing left to show).
        with web.services.engine.connect() as connection:
            until = connection.execute(
                sa.select(tables.throttles.c.blocked_until).where(
                    tables.throttles.c.key == "login:0750654D"
                )
            ).scalar()
        right = {"identifiant": "0750654D", "mot_de_passe": PASSWORD}
        if until is not None and not until.tzinfo:
            until = until.replace(tzinfo=dt.UTC)  # SQLite gives naive UTC
        if until is not None and until - dt.datetime.now(dt.UTC) > dt.timedelta(seconds=1):
            assert anonymous_post(base, "/connexion", right).status_code == 429


def test_parallel_forgotten_password_requests_send_three_mails(
    make_web: Callable[..., Web], database_url: str
) -> None:
    web = make_web({}, database_url=database_url)
    activated_account(web)
    with serving(web) as base:
        asked = {"identifiant": "0750654D"}
        with ThreadPoolExecutor(PARALLEL) as pool:
            answers = list(
                pool.map(lambda _: anonymous_post(base, "/mot-de-passe-oublie", asked), range(20))
            )
        assert {a.status_code for a in answers} == {200}
        # The same answer to all twenty, whether a mail went or not (each its own CSRF token).
        assert len({re.sub(r'value="[\w-]{43}"', "", a.text) for a in answers}) == 1
        until(lambda: len(events(web, "reset_requested", "reset_limited")) == 20)
        assert len(outbox(web)) == 3  # queued, delivered by the server's sender (stopped after)


def test_parallel_upload_creations_never_pass_the_accounts_quota(
    make_web: Callable[..., Web], database_url: str
) -> None:
    web = make_web(
        {}, database_url=database_url, max_unfinished_uploads=3, max_unfinished_bytes=10**9
    )
    activated_account(web)
    with serving(web) as base, session(base) as http:
        tus = {**tus_headers(http), "Tus-Resumable": "1.0.0", "Upload-Length": "10"}

        def create(_: int) -> int:
            with httpx2.Client(base_url=base, timeout=60) as client:
                return client.post("/api/uploads", headers=tus).status_code

        with ThreadPoolExecutor(PARALLEL) as pool:
            statuses = list(pool.map(create, range(24)))
        assert sorted(statuses) == [201] * 3 + [403] * 21
        with web.services.engine.connect() as connection:
            assert (
                connection.execute(sa.select(sa.func.count()).select_from(tables.uploads)).scalar()
                == 3
            )


def test_parallel_uploads_never_pass_the_accounts_bytes(
    make_web: Callable[..., Web], database_url: str
) -> None:
    web = make_web({}, database_url=database_url, max_unfinished_bytes=100)
    activated_account(web)
    with serving(web) as base, session(base) as http:
        tus = {**tus_headers(http), "Tus-Resumable": "1.0.0", "Upload-Length": "30"}

        def create(_: int) -> int:
            with httpx2.Client(base_url=base, timeout=60) as client:
                return client.post("/api/uploads", headers=tus).status_code

        with ThreadPoolExecutor(PARALLEL) as pool:
            statuses = list(pool.map(create, range(16)))
        assert statuses.count(201) == 3  # 90 bytes of 100


def test_parallel_submissions_of_one_form_make_one_ticket(
    make_web: Callable[..., Web], database_url: str
) -> None:
    web = make_web({}, database_url=database_url)
    activated_account(web)
    activated_account(web, "0750655E", email="jean@example.fr")
    with serving(web) as base, session(base) as http, session(base, "0750655E") as other:

        def submit(client: httpx2.Client) -> httpx2.Response:
            with httpx2.Client(base_url=base, cookies=client.cookies, timeout=60) as browser:
                return browser.post(
                    "/tickets",
                    data={"csrf": client.cookies["kb_csrf"], "jeton": "double-clic",
                          "categorie": "abonnement", "sujet": "S", "message": "M"},
                    files=[("fichiers", ("", b"", "application/octet-stream"))],
                )  # fmt: skip

        with ThreadPoolExecutor(PARALLEL) as pool:
            answers = list(pool.map(lambda _: submit(http), range(12)))
        assert {a.status_code for a in answers} == {303}
        mine = {a.headers["location"].split("?")[0] for a in answers}
        assert len(mine) == 1
        # The same token from another account: its own ticket, never a look at this one.
        theirs = submit(other)
        assert theirs.status_code == 303
        assert theirs.headers["location"].split("?")[0] not in mine
    with web.services.engine.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(tables.tickets)).scalar() == 2
        )
