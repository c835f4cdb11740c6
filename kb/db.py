"""SQLAlchemy Core: the engine, the tables, and migrations (Alembic) applied at start."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kb.clock import as_utc
from kb.config import Settings
from kb.errors import KbError

metadata = sa.MetaData()


class UtcDateTime(sa.types.TypeDecorator[dt.datetime]):
    """An instant stored with its zone and always read back aware, in UTC, on every database
    (SQLite keeps no zone): no caller ever patches a naive datetime."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        # `at - timedelta(...)` is date arithmetic: let the plain type choose (an Interval).
        if isinstance(value, dt.datetime):
            return self
        return self.impl.coerce_compared_value(op, value)

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        # Only instants: `at - interval` binds a timedelta through this type too.
        return as_utc(value) if isinstance(value, dt.datetime) else value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return as_utc(value) if isinstance(value, dt.datetime) else value


# Usage, aggregated per day: a view or a search is a counter, not a row.
article_views = sa.Table(
    "article_views",
    metadata,
    sa.Column("slug", sa.String(200), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("views", sa.Integer, nullable=False),
)

searches = sa.Table(
    "searches",
    metadata,
    sa.Column("query", sa.String(500), primary_key=True),  # folded, trimmed
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("results", sa.Integer, nullable=False),  # results of the last such search
    sa.Column("last_seen", UtcDateTime(), nullable=False),
    sa.Column("spelling", sa.String(500)),  # the last such search as typed, accents and all
    # 1 when no result of the last such search answered all its words: a content gap too
    sa.Column("weak", sa.Integer, nullable=False, server_default="0"),
)

votes = sa.Table(
    "votes",
    metadata,
    sa.Column("slug", sa.String(200), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("helpful", sa.Integer, nullable=False),
    sa.Column("unhelpful", sa.Integer, nullable=False),
)


# Accounts: establishments log in with their UAI, agents and editors with their e-mail.
accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("login", sa.String(254), nullable=False, unique=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("establishment", sa.String(200), nullable=False),
    sa.Column("first_name", sa.String(100), nullable=False),
    sa.Column("last_name", sa.String(100), nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("password_hash", sa.String(200)),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("activated_at", UtcDateTime()),
    sa.Column("disabled_at", UtcDateTime()),
)

# Single-use links (activation, password reset, e-mail change): only their hash is kept.
tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("purpose", sa.String(20), nullable=False),
    sa.Column("new_email", sa.String(254)),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("used_at", UtcDateTime()),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
)

# Every login success and failure, and what changes an account: also what throttling reads.
audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UtcDateTime(), nullable=False, index=True),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("login", sa.String(254), index=True),
    sa.Column("account_id", sa.Integer),
    sa.Column("address", sa.String(64), index=True),
    sa.Column("detail", sa.String(500)),
)

# Attempts that a limit counts (logins, password e-mails), one row per account or address:
# each attempt is reserved by a compare-and-swap on `version` before it is acted on.
throttles = sa.Table(
    "throttles",
    metadata,
    sa.Column("key", sa.String(320), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("blocked_until", sa.DateTime(timezone=True)),
    sa.Column("version", sa.Integer, nullable=False),
)


# Help tickets: a thread of messages, each with its attachments (files in the data dir).
tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("reference", sa.String(20), unique=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("category", sa.String(100), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("due_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("resolved_at", UtcDateTime()),
    # The form's one-time token: a double click or a retried request makes one ticket.
    sa.Column("creation_token", sa.String(64), unique=True),
    # The agent who handles it; none while it waits in "Non assignés".
    sa.Column("assignee_id", sa.Integer, sa.ForeignKey("accounts.id"), index=True),
    # How the request came: "web" (the form), or "telephone" / "email" typed in by an agent.
    sa.Column("channel", sa.String(20), nullable=False, server_default="web"),
    sa.Column("opened_by_id", sa.Integer, sa.ForeignKey("accounts.id")),
)

# What happened to a ticket besides messages (taken, handed over): shown in its thread.
ticket_events = sa.Table(
    "ticket_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=False, index=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("actor_id", sa.Integer, sa.ForeignKey("accounts.id")),  # none: kb itself
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("target_id", sa.Integer, sa.ForeignKey("accounts.id")),
)

# The establishment's opinion of a resolved ticket, and the agent who handled it then.
ratings = sa.Table(
    "ratings",
    metadata,
    sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), primary_key=True),
    sa.Column("satisfied", sa.Boolean, nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("agent_id", sa.Integer, sa.ForeignKey("accounts.id")),
    sa.Column("at", UtcDateTime(), nullable=False, index=True),
)

# Agents on a ticket's page right now, and whether they are writing: shared by every replica.
presence = sa.Table(
    "presence",
    metadata,
    sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("typing_at", UtcDateTime()),
    sa.Column("seen_at", UtcDateTime(), nullable=False, index=True),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=False, index=True),
    sa.Column("author_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("from_support", sa.Boolean, nullable=False),
    sa.Column("internal", sa.Boolean, nullable=False, default=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    # An agent's reply held because another agent answered meanwhile: sent once confirmed.
    sa.Column("held_at", UtcDateTime()),
)

attachments = sa.Table(
    "attachments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id"), nullable=False, index=True),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("stored_as", sa.String(255), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("content_type", sa.String(255), nullable=False),
)

# An article suggested under a ticket's subject, opened: a ticket perhaps avoided.
suggestion_events = sa.Table(
    "suggestion_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.Integer),
    sa.Column("slug", sa.String(200), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False, index=True),
)

# Articles an establishment read (logged in), kept 90 days: shown beside its next ticket.
article_reads = sa.Table(
    "article_reads",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.Integer, nullable=False, index=True),
    sa.Column("slug", sa.String(200), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False, index=True),
)

# Canned replies inserted in replies sent, per day: which ones editors should keep sharp.
canned_uses = sa.Table(
    "canned_uses",
    metadata,
    sa.Column("slug", sa.String(200), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("uses", sa.Integer, nullable=False),
)

# Articles that support linked in replies: what editors should keep sharp.
article_links = sa.Table(
    "article_links",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id"), nullable=False),
    sa.Column("slug", sa.String(200), nullable=False, index=True),
    sa.Column("at", UtcDateTime(), nullable=False),
)


# Resumable uploads (tus): bytes land in data_dir/uploads/<id> until a ticket takes them.
uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("content_type", sa.String(255), nullable=False),
    sa.Column("length", sa.BigInteger, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False, index=True),
    sa.Column("completed_at", UtcDateTime()),
    sa.Column("sha256", sa.String(64)),
)


# The mail outbox: a mail is a row written in the transaction of what causes it; background
# senders claim due rows (a lease), deliver them and mark them sent, or retry with backoff.
# next_attempt_at is NULL once nothing is left to do (sent or abandoned).
mail_outbox = sa.Table(
    "mail_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(255), nullable=False, unique=True),
    sa.Column("sender", sa.String(500), nullable=False),  # "": KB_MAIL_FROM when sent
    sa.Column("recipient", sa.String(500), nullable=False),
    sa.Column("subject", sa.String(500), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("html", sa.Text, nullable=False),
    sa.Column("headers", sa.Text, nullable=False),  # JSON list of [name, value]
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("next_attempt_at", UtcDateTime(), index=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.String(500)),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("claimed_until", UtcDateTime()),
    sa.Column("sent_at", UtcDateTime()),
    sa.Column("abandoned_at", UtcDateTime(), index=True),
)


# Serving processes: an instance id owns in-flight files while its lease is renewed. A PID
# means nothing across hosts and containers (every container's kb may be PID 1).
instances = sa.Table(
    "instances",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),  # for operators reading the table
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("lease_until", UtcDateTime(), nullable=False, index=True),
)


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
    """`upsert_add` for many rows in one statement, sent as one batch (executemany)."""
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement: Any = pg_insert(table)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(table)
    updates: dict[str, Any] = {
        name: table.c[name] + statement.excluded[name] for name in increments
    }
    updates.update({name: statement.excluded[name] for name in replace})
    connection.execute(statement.on_conflict_do_update(index_elements=keys, set_=updates), rows)
