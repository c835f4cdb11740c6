"""The database's tables (SQLAlchemy Core): what kb keeps, and why, table by table."""

from __future__ import annotations

import sqlalchemy as sa

from kb.columns import UtcDateTime

metadata = sa.MetaData()


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
