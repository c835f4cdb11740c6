"""The mail outbox: mails queued with what causes them, delivered by a background sender."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import re
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kb.clock import as_utc, now
from kb.config import Settings
from kb.helpdesk.mail import Mail, Mailer, MailError, compose, new_message_id
from kb.tables import mail_outbox

log = logging.getLogger("kb.helpdesk.outbox")

BATCH = 20
# Long enough for a batch over a slow SMTP server: a live sender never loses its claim, and a
# dead one's mails go to another replica after it.
LEASE = dt.timedelta(minutes=10)
MAX_BACKOFF_SECONDS = 3600
KEEP_SENT = dt.timedelta(days=30)
SHOWN_DAYS = 7
# Headers kb writes itself: a caller cannot change who sends, to whom, or what.
RESERVED = {
    "from", "to", "cc", "bcc", "subject", "date", "message-id", "sender", "mime-version",
    "content-type", "content-transfer-encoding", "content-language", "auto-submitted",
}  # fmt: skip
HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,76}$")


def enqueue(connection: sa.Connection, mail: Mail) -> str:
    """Queue `mail` in the caller's transaction and return its Message-ID.

    The mail leaves only if that transaction commits, and never during the request: the
    background sender of any replica delivers it, retrying until KB_MAIL_GIVE_UP_HOURS. Its
    Message-ID (`mail.message_id`, or one made now in `mail.sender`'s domain) stays the same
    for every attempt; give In-Reply-To and References in `mail.headers` to thread a reply.
    `mail.sender` is required (KB_MAIL_FROM, usually)."""
    if not mail.sender:
        raise ValueError("Mail.sender is required to queue a mail (KB_MAIL_FROM)")
    for name, value in mail.headers:
        if not HEADER_NAME.match(name) or name.lower() in RESERVED:
            raise ValueError(f"header {name!r} cannot be set on a queued mail")
        if "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} has a line break")
    message_id = mail.message_id or new_message_id(mail.sender)
    at = now()
    connection.execute(
        sa.insert(mail_outbox).values(
            message_id=message_id, sender=mail.sender, recipient=mail.to,
            subject=mail.subject, text=mail.text(), html=mail.html(),
            headers=json.dumps([list(h) for h in mail.headers], ensure_ascii=False),
            created_at=at, next_attempt_at=at, attempts=0,
        )
    )  # fmt: skip
    return message_id


@dataclass
class Delivery:
    """What one pass of the sender did."""

    sent: int = 0
    retried: int = 0
    abandoned: int = 0


class Sender:
    """Claims due mails (a lease, so no two replicas send the same one), delivers them over
    one SMTP connection, then marks each sent, retried later (backoff) or abandoned."""

    def __init__(self, engine: Engine, mailer: Mailer, settings: Settings, owner: str) -> None:
        self.engine, self.mailer, self.settings = engine, mailer, settings
        self.owner = owner[:30]
        self._stopping = threading.Event()

    def stop(self) -> None:
        """A stopping replica sends no more: what it claimed goes back to the others now."""
        self._stopping.set()

    def deliver(self, at: dt.datetime | None = None, passes: int = 10) -> Delivery:
        """Deliver what is due, a batch at a time, until nothing is (or `passes` batches)."""
        done = Delivery()
        for _ in range(passes):
            if self._stopping.is_set():
                break
            moment = at or now()
            rows, claim = self._claim(moment)
            if not rows:
                break
            self._send(rows, claim, moment, done)
        return done

    def _claim(self, at: dt.datetime) -> tuple[Sequence[Any], str]:
        claim = f"{self.owner}:{uuid.uuid4().hex[:16]}"
        due = (
            sa.select(mail_outbox.c.id)
            .where(
                mail_outbox.c.next_attempt_at <= at,
                sa.or_(mail_outbox.c.claimed_until.is_(None), mail_outbox.c.claimed_until < at),
            )
            .order_by(mail_outbox.c.next_attempt_at, mail_outbox.c.id)
            .limit(BATCH)
            # PostgreSQL: replicas claiming at once skip each other's rows instead of waiting.
            # SQLite renders no FOR UPDATE: its single writer makes the UPDATE atomic anyway.
            .with_for_update(skip_locked=True)
        )
        with self.engine.begin() as connection:
            connection.execute(
                sa.update(mail_outbox)
                .where(mail_outbox.c.id.in_(due))
                .values(claimed_by=claim, claimed_until=at + LEASE)
            )
            rows = connection.execute(
                sa.select(mail_outbox)
                .where(mail_outbox.c.claimed_by == claim)
                .order_by(mail_outbox.c.id)
            ).all()
        return rows, claim

    def _send(self, rows: Sequence[Any], claim: str, at: dt.datetime, done: Delivery) -> None:
        with self.mailer.session() as deliver:
            for index, row in enumerate(rows):
                if self._stopping.is_set():
                    self._release(claim)
                    return
                try:
                    deliver(self._message(row))
                except MailError as exc:
                    if exc.connection:  # nothing else can go now: all wait their next try
                        for other in rows[index:]:
                            self._failed(other, claim, at, exc, done)
                        return
                    self._failed(row, claim, at, exc, done)
                    continue
                except (OSError, ValueError) as exc:  # the outbox dir, or a header kb refused
                    self._failed(row, claim, at, MailError(str(exc)), done)
                    continue
                self._mark(row, claim, sent_at=now(), next_attempt_at=None, last_error=None)
                done.sent += 1

    def _message(self, row: Any) -> Any:
        headers = tuple((name, value) for name, value in json.loads(row.headers))
        return compose(
            sender=row.sender or self.settings.mail_from, to=row.recipient, subject=row.subject,
            text=row.text, html=row.html, message_id=row.message_id, headers=headers,
            date=as_utc(row.created_at).timestamp(),
        )  # fmt: skip

    def _failed(
        self, row: Any, claim: str, at: dt.datetime, exc: MailError, done: Delivery
    ) -> None:
        attempts = row.attempts + 1
        give_up = as_utc(row.created_at) + dt.timedelta(hours=self.settings.mail_give_up_hours)
        retry_at = at + dt.timedelta(seconds=backoff(self.settings.mail_retry_seconds, attempts))
        if exc.permanent or retry_at > give_up:
            self._mark(row, claim, attempts=attempts, last_error=exc.message[:500],
                       next_attempt_at=None, abandoned_at=at)  # fmt: skip
            log.error("mail: abandoned %r to %s after %d attempt(s): %s",
                      row.subject, row.recipient, attempts, exc.message)  # fmt: skip
            done.abandoned += 1
        else:
            self._mark(row, claim, attempts=attempts, last_error=exc.message[:500],
                       next_attempt_at=retry_at)  # fmt: skip
            log.warning("mail: %r to %s not sent (attempt %d), next try at %s: %s",
                        row.subject, row.recipient, attempts,
                        retry_at.isoformat(timespec="seconds"), exc.message)  # fmt: skip
            done.retried += 1

    def _release(self, claim: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                sa.update(mail_outbox)
                .where(mail_outbox.c.claimed_by == claim)
                .values(claimed_by=None, claimed_until=None)
            )

    def _mark(self, row: Any, claim: str, **values: Any) -> None:
        if "attempts" not in values:
            values["attempts"] = row.attempts + 1
        with self.engine.begin() as connection:
            connection.execute(
                sa.update(mail_outbox)
                .where(mail_outbox.c.id == row.id, mail_outbox.c.claimed_by == claim)
                .values(claimed_by=None, claimed_until=None, **values)
            )

    def purge(self, at: dt.datetime | None = None) -> int:
        """Sent mails are kept a month (for `kb mail queue` and support), then go."""
        limit = (at or now()) - KEEP_SENT
        with self.engine.begin() as connection:
            return connection.execute(
                sa.delete(mail_outbox).where(
                    mail_outbox.c.next_attempt_at.is_(None),
                    sa.or_(mail_outbox.c.sent_at < limit, mail_outbox.c.abandoned_at < limit),
                )
            ).rowcount


def backoff(first_seconds: int, attempts: int) -> float:
    """first, 2×, 4×… up to an hour, with a tenth of jitter so replicas do not retry in step."""
    delay = min(first_seconds * 2 ** min(attempts - 1, 20), MAX_BACKOFF_SECONDS)
    return float(delay) * random.uniform(0.9, 1.0)


@dataclass(frozen=True)
class Queued:
    """A mail as operators and support see it."""

    id: int
    recipient: str
    subject: str
    created_at: dt.datetime
    attempts: int
    last_error: str | None
    next_attempt_at: dt.datetime | None
    sending: bool
    abandoned_at: dt.datetime | None

    @property
    def state(self) -> str:
        if self.abandoned_at:
            return "abandonné"
        if self.sending:
            return "en cours d'envoi"
        return "nouvel essai prévu" if self.attempts else "à envoyer"


@dataclass(frozen=True)
class Depth:
    """The queue in numbers, for /metrics."""

    waiting: int
    failing: int  # waiting, after at least one failed attempt
    abandoned: int  # in the last SHOWN_DAYS days
    oldest_seconds: float  # age of the oldest mail waiting, 0 when none


def depth(engine: Engine, at: dt.datetime | None = None) -> Depth:
    at = at or now()
    pending = mail_outbox.c.next_attempt_at.is_not(None)
    query = sa.select(
        sa.func.count().filter(pending),
        sa.func.count().filter(pending, mail_outbox.c.attempts > 0),
        sa.func.count().filter(mail_outbox.c.abandoned_at >= at - dt.timedelta(days=SHOWN_DAYS)),
        sa.func.min(mail_outbox.c.created_at).filter(pending),
    )
    with engine.connect() as connection:
        row = connection.execute(query).one()
    oldest: dt.datetime | None = row[3]
    age = (at - as_utc(oldest)).total_seconds() if oldest else 0.0
    return Depth(int(row[0]), int(row[1]), int(row[2]), max(age, 0.0))


def waiting(engine: Engine, at: dt.datetime | None = None) -> list[Queued]:
    """Mails not sent yet, oldest first, and those abandoned in the last days."""
    at = at or now()
    since = at - dt.timedelta(days=SHOWN_DAYS)
    query = (
        sa.select(mail_outbox)
        .where(
            sa.or_(mail_outbox.c.next_attempt_at.is_not(None), mail_outbox.c.abandoned_at >= since)
        )
        .order_by(mail_outbox.c.id)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [_queued(row, at) for row in rows]


def failures(engine: Engine, at: dt.datetime | None = None) -> list[Queued]:
    """What support should know: mails abandoned lately, and mails that failed at least once."""
    return [q for q in waiting(engine, at) if q.abandoned_at or q.attempts]


def _queued(row: Any, at: dt.datetime) -> Queued:
    until = as_utc(row.claimed_until) if row.claimed_until else None
    return Queued(
        id=row.id, recipient=row.recipient, subject=row.subject,
        created_at=as_utc(row.created_at), attempts=row.attempts, last_error=row.last_error,
        next_attempt_at=as_utc(row.next_attempt_at) if row.next_attempt_at else None,
        sending=bool(until and until > at and row.next_attempt_at is not None),
        abandoned_at=as_utc(row.abandoned_at) if row.abandoned_at else None,
    )  # fmt: skip
