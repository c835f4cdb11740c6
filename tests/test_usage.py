"""Views, searches and votes counted without slowing pages; frequent questions; both databases."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable

import anyio
import sqlalchemy as sa
from conftest import ROOT, Web, article, page

from kb import db, tables
from kb.config import Settings
from kb.insights import usage
from kb.web.app import refresh_frequent

FILES = {
    f"abonnement/a{n}.md": article(f"Article {n}", f"Texte {n} sur la facture.") for n in range(6)
} | {
    "utilisation/epingle.md": article("Épinglé", "Texte.", featured=1),
    "utilisation/brouillon.md": article("Brouillon", "Texte.", draft="true"),
}


def rows(web: Web, table: sa.Table) -> list[tuple[object, ...]]:
    with web.services.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(sa.select(table).order_by(*table.primary_key))]


def test_views_searches_and_votes_wait_in_memory_then_land(
    make_web: Callable[..., Web], database_url: str
) -> None:
    web = make_web(FILES, database_url=database_url)
    for _ in range(3):
        web.client.get("/articles/a1")
    web.client.get("/recherche", params={"q": "Facture"})
    web.client.get("/recherche", params={"q": "facture "})
    web.client.get("/api/search", params={"q": "xylophone"})
    web.client.get("/api/suggest", params={"q": "fact"})  # typing: not a search
    web.client.get("/recherche", params={"q": "facture", "page": 2})  # same search, next page
    token = web.csrf()
    web.client.post("/articles/a1/vote", data={"csrf": token, "utile": "non"})
    assert rows(web, tables.article_views) == []  # nothing written on the request path
    assert web.services.usage.flush() == 4
    today = usage.today()
    assert rows(web, tables.article_views) == [("a1", today, 3)]
    searched = {r[0]: (r[2], r[3]) for r in rows(web, tables.searches)}
    assert searched == {"facture": (2, 6), "xylophone": (1, 0)}
    assert rows(web, tables.votes) == [("a1", today, 0, 1)]
    web.client.get("/articles/a1")
    web.services.usage.flush()
    assert rows(web, tables.article_views) == [("a1", today, 4)]


def test_frequent_questions_pins_first_then_most_viewed_over_30_days(
    make_web: Callable[..., Web], database_url: str
) -> None:
    web = make_web(FILES, database_url=database_url)
    engine = web.services.engine
    today = usage.today()
    with engine.begin() as connection:
        for slug, day, views in [
            ("a2", today, 5),
            ("a3", today - dt.timedelta(days=3), 9),
            ("a4", today - dt.timedelta(days=45), 100),  # outside the window
            ("brouillon", today, 50),  # not published
            ("a5", today, 5),
        ]:
            db.upsert_add(
                connection, tables.article_views, {"slug": slug, "day": day}, {"views": views}
            )
    listing = web.site.snapshot().listing
    chosen = [a["slug"] for a in usage.frequent_questions(engine, listing)]
    assert chosen == ["epingle", "a3", "a2"]


def test_home_shows_the_frequent_questions_computed_in_the_background(
    make_web: Callable[..., Web],
) -> None:
    web = make_web(FILES)
    for _ in range(2):
        web.client.get("/articles/a4")
    web.client.get("/articles/a0")
    web.services.usage.flush()
    before = [href for href, _ in page(web, "/").links]
    assert "/articles/a4" not in before  # computed in the background, not per request
    anyio.run(refresh_frequent, web.services)
    after = [href for href, _ in page(web, "/").links]
    assert (
        after.index("/articles/epingle") < after.index("/articles/a4") < after.index("/articles/a0")
    )


def test_thousands_of_new_searches_land_in_one_flush_as_typed(database_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Every search new: a flush writes them all, each exactly as typed, on both databases,
    pausing for the requests between slices of its work, never while holding the database."""
    settings = Settings.from_env({"KB_DATABASE_URL": database_url}, data_dir=tmp_path / "var")
    engine = db.make_engine(settings)
    db.upgrade(engine)
    recorder = usage.Usage(engine)
    # Another writer, which gives up at once if the flush holds the database's write lock.
    other = sa.create_engine(
        engine.url,
        **({"connect_args": {"timeout": 0}} if database_url.startswith("sqlite") else {}),
    )
    paused: list[int] = []

    def pause() -> None:
        with other.begin() as connection:
            connection.execute(
                tables.votes.insert().values(slug=f"p{len(paused)}", day=dt.date(2026, 1, 1),
                                             helpful=1, unhelpful=0)
            )  # fmt: skip
        paused.append(1)

    try:
        typed = [
            "Mot de passe", "l'accès « UAI »", 'des "guillemets" et une \\ barre', "émoji 🎓 ✓",
            "ligne\u2028séparée", "[1, 2]", "null", "a" * 600,
            *(f"question {n} ?" for n in range(3000)),
        ]  # fmt: skip
        before = dt.datetime.now(dt.UTC).replace(microsecond=0)  # kept to the second
        for n, query in enumerate(typed):
            recorder.search(query, n % 7, weak=n % 2 == 1)
        recorder.search("  MOT de   passe ", 9)  # the same search again, typed otherwise
        after = dt.datetime.now(dt.UTC)
        assert recorder.flush(pause) == len(typed)
        # Between slices of the count (every search noted) and of the rows (one a query).
        noted = len(typed) + 1
        assert len(paused) == (noted - 1) // usage.SLICE + (len(typed) - 1) // usage.SLICE
        recorder.search("question 7 ?", 3)
        assert recorder.flush() == 1
        with engine.connect() as connection:
            found = {r.query: r for r in connection.execute(sa.select(tables.searches))}
        assert len(found) == len(typed)
        for n, query in enumerate(typed):
            row = found[usage.normalized_query(query)]
            assert row.day == usage.today()
            assert before <= row.last_seen <= dt.datetime.now(dt.UTC)
            if query == "Mot de passe":
                assert (row.count, row.results, row.spelling, row.weak) == (2, 9, "MOT de passe", 0)
                assert row.last_seen <= after
            elif query == "question 7 ?":
                assert (row.count, row.results, row.spelling) == (2, 3, "question 7 ?")
            else:
                expected = (1, n % 7, " ".join(query.split())[:500], n % 2)
                assert (row.count, row.results, row.spelling, row.weak) == expected
    finally:
        other.dispose()
        engine.dispose()


def test_failed_flush_keeps_the_counts(make_web: Callable[..., Web], tmp_path) -> None:  # type: ignore[no-untyped-def]
    web = make_web(FILES)
    web.client.get("/articles/a1")
    web.client.get("/api/search", params={"q": "Facture"})
    recorder = web.services.usage
    real_engine = recorder.engine
    recorder.engine = sa.create_engine(f"sqlite:///{tmp_path}/missing/dir/x.sqlite3")
    with contextlib.suppress(sa.exc.SQLAlchemyError):
        recorder.flush()
    recorder.engine = real_engine
    web.client.get("/articles/a1")
    web.client.get("/api/search", params={"q": "FACTURE"})  # after the failure: the last one
    assert recorder.pending() == 2  # a1's views, and one search counted twice
    web.client.get("/api/search", params={"q": "factures"})  # another word: another search
    recorder.flush()
    assert rows(web, tables.article_views) == [("a1", usage.today(), 2)]
    searched = {r[0]: (r[2], r[5]) for r in rows(web, tables.searches)}
    assert searched == {"facture": (2, "FACTURE"), "factures": (1, "factures")}


def test_migrations_are_idempotent_and_sqlite_uses_wal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings.from_env({}, data_dir=tmp_path / "var")
    engine = db.make_engine(settings)
    db.upgrade(engine)
    db.upgrade(engine)
    shipped = sorted(p.name[:4] for p in (ROOT / "kb" / "migrations" / "versions").glob("0*.py"))
    assert db.current_revision(engine) == db.head_revision() == shipped[-1]
    with engine.connect() as connection:
        assert connection.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(sa.text("PRAGMA busy_timeout")).scalar() == 10000


def test_postgres_urls_use_psycopg3() -> None:
    settings = Settings.from_env({"KB_DATABASE_URL": "postgresql://u:p@h/kb"})
    assert db.database_url(settings) == "postgresql+psycopg://u:p@h/kb"


def test_unreachable_database_gets_a_french_message(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings.from_env(
        {"KB_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/kb"}, data_dir=tmp_path
    )
    try:
        db.upgrade(db.make_engine(settings))
    except db.DatabaseUnavailable as exc:
        assert exc.message.startswith("Base de données injoignable : ")
    else:
        raise AssertionError("no error")


def test_db_upgrade_command(cli: Callable[..., object], tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "var"))
    result = cli("db", "upgrade")
    assert result.status == 0  # type: ignore[attr-defined]
    assert f"Base à jour (révision {db.head_revision()})" in result.out  # type: ignore[attr-defined]
