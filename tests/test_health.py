"""Health for load balancers, and a database that hangs: bounded waits, never 30 seconds."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import Page, Web, activated_account, article, log_in
from starlette.testclient import TestClient

from kb import db
from kb.config import Settings
from kb.web.app import create_app

FILES = {"abonnement/facture.md": article("Obtenir une facture", "Les factures sont là.")}


def test_a_replica_without_index_is_alive_but_not_ready(make_site: Callable[..., object],
                                                        tmp_path: Path) -> None:  # fmt: skip
    site = make_site(FILES, built=False)
    settings = Settings.from_env({}, content_dir=site.content, index_dir=tmp_path / "vide",  # type: ignore[attr-defined]
                                 data_dir=tmp_path / "var")  # fmt: skip
    with TestClient(create_app(settings, background=False)) as client:
        assert client.get("/livez").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.headers["cache-control"] == "no-store"
        assert ready.json()["index"] is None and ready.json()["database"] == "ok"
        assert "pas encore construit" in ready.json()["reason"]


def test_ready_reports_the_index_and_the_database(make_web: Callable[..., Web]) -> None:
    web = make_web(FILES)
    body = web.client.get("/readyz").json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["index"].startswith("gen-")
    assert web.client.get("/healthz").json()["index"] == body["index"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_database_that_hangs_answers_a_french_503_and_articles_keep_working(
    make_web: Callable[..., Web], database_url: str
) -> None:
    web = make_web(FILES, database_url=database_url, db_statement_timeout=1, db_pool_timeout=1)
    activated_account(web)
    web.client = TestClient(web.app, raise_server_exceptions=False, follow_redirects=False)
    log_in(web)
    assert web.client.get("/tickets").status_code == 200
    locker = sa.create_engine(database_url)
    with locker.connect() as connection:
        # Another transaction holds the tickets table: every query on it waits, server side.
        connection.execute(sa.text("LOCK TABLE tickets IN ACCESS EXCLUSIVE MODE"))
        waiting = web.client.get("/tickets")  # without a statement timeout: waits for ever
        assert waiting.status_code == 503
        assert "La base de données ne répond pas pour le moment" in Page(waiting).text
        assert web.client.get("/articles/facture").status_code == 200
        assert web.client.get("/api/search", params={"q": "facture"}).json()["total"] == 1
        assert web.client.get("/readyz").status_code == 200
        connection.rollback()
    locker.dispose()
    assert web.client.get("/tickets").status_code == 200


def test_a_database_host_that_never_answers_fails_fast_instead_of_hanging(
    tmp_path: Path,
) -> None:
    silent = socket.socket()  # accepts connections, never says a word: a host that hangs
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    settings = Settings.from_env({}, data_dir=tmp_path, db_connect_timeout=1,
                                 database_url=f"postgresql://kb@127.0.0.1:{port}/kb")  # fmt: skip
    engine = db.make_engine(settings)
    outcome: list[BaseException] = []

    def connect() -> None:
        try:
            engine.connect().close()
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout=20)  # without a connect timeout, it would wait for ever
    silent.close()
    assert not thread.is_alive() and isinstance(outcome[0], sa.exc.OperationalError)
    engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_full_pool_is_waited_for_a_few_seconds_only(database_url: str, tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=tmp_path, database_url=database_url,
                                 db_pool_timeout=1)  # fmt: skip
    engine = db.make_engine(settings)
    held = [engine.connect() for _ in range(10)]  # pool_size 5 + max_overflow 5
    with pytest.raises(sa.exc.TimeoutError):
        engine.connect()
    for connection in held:
        connection.close()
    engine.dispose()
