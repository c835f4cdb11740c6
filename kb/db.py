"""The database: the engine, migrations (Alembic) applied one process at a time, and the
upserts and row locks that keep concurrent writers correct."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kb.config import Settings
from kb.errors import KbError
from kb.tables import accounts

DATABASE_DOWN = (
    "La base de données ne répond pas pour le moment. Réessayez dans quelques instants : "
    "les articles d'aide et la recherche restent consultables."
)


class DatabaseUnavailable(KbError):
    status = 503
    code = "base_indisponible"


def lock_account(connection: sa.Connection, account_id: int) -> None:
    """Hold the account's row until the transaction ends, so that a check-then-insert on what
    the account owns is one step: a row lock on PostgreSQL; on SQLite, a write at the start
    takes the database's write lock before anything is read."""
    accounts_table = accounts
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.select(accounts_table.c.id)
            .where(accounts_table.c.id == account_id)
            .with_for_update()
        )
    else:
        connection.execute(
            sa.update(accounts_table)
            .where(accounts_table.c.id == account_id)
            .values(id=accounts_table.c.id)
        )


def database_url(settings: Settings) -> str:
    """The URL in force, with psycopg 3 as the PostgreSQL driver."""
    url = settings.database
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(settings: Settings) -> Engine:
    url = database_url(settings)
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 10})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    # A database that hangs must not hold requests: the connection, each statement (on the
    # server) and the wait for a pooled connection are bounded; unacknowledged packets (a host
    # gone) and idle connections (keepalives) are given up on the same scale.
    connect_args = {
        "connect_timeout": settings.db_connect_timeout,
        "options": f"-c statement_timeout={settings.db_statement_timeout * 1000}",
        "tcp_user_timeout": (settings.db_connect_timeout + settings.db_statement_timeout) * 1000,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }
    return sa.create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=5,
        pool_timeout=settings.db_pool_timeout, connect_args=connect_args,
    )  # fmt: skip


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["engine"] = engine
    return config


class SchemaTooNew(KbError):
    status = 500
    code = "schema_trop_recent"


# Any fixed number: the PostgreSQL advisory lock every kb process takes to migrate.
MIGRATION_LOCK = 0x6B62_6D69_6772  # "kbmigr"


def upgrade(engine: Engine) -> None:
    """Bring the database to the latest migration (idempotent), one process at a time: replicas
    started together wait for the first one's migration, then find nothing left to do."""
    from alembic import command

    try:
        with _migration_lock(engine) as connection:
            check_schema(connection)
            config = _alembic_config(engine)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except sa.exc.OperationalError as exc:
        raise DatabaseUnavailable(
            f"Base de données injoignable : {str(exc.orig).strip().splitlines()[0]}"
        ) from exc


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[sa.Connection]:
    """PostgreSQL: an advisory lock, held by the transaction that migrates. SQLite: a file
    lock next to the database file (its own locks do not cover Alembic's read-then-write)."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            # Waiting for another replica's migration, and migrating, may take longer.
            connection.execute(sa.text("SET LOCAL statement_timeout = 0"))
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
            )
            yield connection
        return
    database = engine.url.database
    if not database or database == ":memory:":
        with engine.begin() as connection:
            yield connection
        return
    with open(f"{database}.migration-lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with engine.begin() as connection:
                yield connection
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def check_schema(connection: sa.Connection) -> None:
    """Refuse a database migrated by a newer kb: this code would misread its tables."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        return
    script = ScriptDirectory(str(Path(__file__).parent / "migrations"))
    known = {revision.revision for revision in script.walk_revisions()}
    if current not in known:
        raise SchemaTooNew(
            f"La base de données est à la révision {current}, plus récente que cette version "
            f"de kb (dernière révision connue : {script.get_current_head()}). Installez la "
            "version de kb qui a migré cette base (ou une plus récente) avant de la servir."
        )


def head_revision() -> str:
    """The latest migration shipped with this version of kb."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(Path(__file__).parent / "migrations"))
    return str(script.get_current_head())


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def check_engine_schema(engine: Engine) -> None:
    """`check_schema` on a connection of its own."""
    with engine.connect() as connection:
        check_schema(connection)


def upsert_add(
    connection: sa.Connection,
    table: sa.Table,
    keys: dict[str, Any],
    increments: dict[str, int],
    replace: dict[str, Any] | None = None,
) -> None:
    """INSERT the row, or add `increments` to it (and set `replace`) when it exists."""
    replace = replace or {}
    upsert_many(connection, table, list(keys), list(increments), list(replace),
                [{**keys, **increments, **replace}])  # fmt: skip


def upsert_many(
    connection: sa.Connection,
    table: sa.Table,
    keys: list[str],
    increments: list[str],
    replace: list[str],
    rows: list[dict[str, Any]],
) -> None:
    """`upsert_add` for many rows (distinct keys, hashable values) in one statement: the rows
    go as one JSON array, unpacked by the database (SQLite's json_each, PostgreSQL's
    jsonb_array_elements).

    The usage counts of a worker are thousands of rows a second when every search is new. Sent
    as a batch (executemany), SQLAlchemy prepared each row's parameters in Python, 9 µs a row,
    and SQLite's driver let go of the interpreter and took it back for every row, while the
    requests waited for it. Here a row is a few values run through their column's own bind
    conversion and encoded by orjson, and the statement runs once, the interpreter free. In
    process, never-seen searches through the whole app with the counts written every second in
    their thread (4 December, in turn, two runs of 3 rounds): 369-412 µs a search before,
    329-351 µs after, 300-320 µs with no counts at all."""
    if not rows:
        return
    names = list(rows[0])
    dialect = connection.dialect
    columns = []
    for name in names:
        values = [row[name] for row in rows]
        convert = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if convert is not None:  # each value once: a batch's rows share their day
            converted = {value: convert(value) for value in set(values)}
            values = list(map(converted.__getitem__, values))
        columns.append(values)
    payload = orjson.dumps(list(zip(*columns, strict=True))).decode()
    elements: Any
    fields: list[Any]
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement: Any = pg_insert(table)
        elements = sa.func.jsonb_array_elements(
            sa.cast(sa.bindparam("rows", payload, type_=sa.Text), JSONB)
        ).table_valued("value")
        fields = [
            sa.cast(elements.c.value.op("->>")(i), table.c[name].type)
            for i, name in enumerate(names)
        ]
        chosen = sa.select(*fields).select_from(elements)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(table)
        elements = sa.func.json_each(sa.bindparam("rows", payload, type_=sa.Text)).table_valued(
            "value"
        )
        fields = [sa.func.json_extract(elements.c.value, f"$[{i}]") for i in range(len(names))]
        # WHERE: SQLite reads ON CONFLICT after a SELECT without one as a join's constraint.
        chosen = sa.select(*fields).select_from(elements).where(sa.true())
    statement = statement.from_select(names, chosen)
    updates: dict[str, Any] = {
        name: table.c[name] + statement.excluded[name] for name in increments
    }
    updates.update({name: statement.excluded[name] for name in replace})
    connection.execute(statement.on_conflict_do_update(index_elements=keys, set_=updates))
