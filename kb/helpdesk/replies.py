"""Replies in a ticket's thread, and the replies held because another agent answered first."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kb.clock import now
from kb.errors import NotFound
from kb.helpdesk.accounts import Account
from kb.helpdesk.assignment import take_if_unassigned
from kb.helpdesk.attachments import ReceivedForm, Store
from kb.helpdesk.business_hours import AnswerDelay
from kb.helpdesk.posting import add_message, check_total, distinct
from kb.helpdesk.tickets import MESSAGE_MAX, Attachment, Message, Ticket, TicketInvalid
from kb.helpdesk.uploads import Upload
from kb.tables import attachments, messages, tickets

CLOSED = (
    "Ce ticket est fermé : pour une nouvelle question, créez un ticket d'aide en citant sa "
    "référence."
)


@dataclass(frozen=True)
class Sent:
    message_id: int
    held: bool = False  # another agent answered since `seen`: kept until its author confirms


def reply(
    engine: Engine,
    store: Store,
    ticket: Ticket,
    author: Account,
    form: ReceivedForm,
    *,
    delay: AnswerDelay,
    limit: int,
    internal: bool = False,
    uploaded: Sequence[Upload] = (),
    upload_paths: Mapping[str, Path] | None = None,
    seen: int | None = None,
    notify: Callable[[sa.Connection, int], object] | None = None,
    resolve: bool = False,
) -> Sent:
    """A message in the thread. Support answering waits for the user (or, with `resolve`,
    resolves the ticket in the same transaction); the user answering (or reopening by writing)
    puts the ticket back to support with a new due date.

    An agent's reply written while another agent answered (a reply after `seen`, the last
    message its author saw) is held, not sent: its author compares the two first.
    `notify(connection, message_id)` queues its mails in the same transaction, once sent."""
    body = form.fields.get("message", "").strip()
    if ticket.closed and not author.is_staff:
        form.discard()
        raise TicketInvalid({"message": CLOSED})
    if not body and not form.files and not uploaded:
        form.discard()
        raise TicketInvalid({"message": "Écrivez votre réponse ou joignez un fichier."})
    if len(body) > MESSAGE_MAX:
        form.discard()
        raise TicketInvalid({"message": f"Le message compte {MESSAGE_MAX} caractères au plus."})
    at = now()
    kept: list[tuple[str, Path | None]] = []
    uploaded = distinct(uploaded)
    try:
        with engine.begin() as connection:
            check_total(connection, form, uploaded, limit)
            held = (
                author.is_staff and not internal and seen is not None
                and bool(answered_since(connection, ticket.id, author, seen))
            )  # fmt: skip
            message_id = add_message(
                connection, store, ticket.id, author, body, form, at, kept, internal,
                uploaded=uploaded, upload_paths=upload_paths, held=held,
            )  # fmt: skip
            if not held:
                after_message(connection, ticket, author, internal, at, delay, resolve)
                if notify:
                    notify(connection, message_id)
    except BaseException:
        store.forget(kept)
        form.discard()
        raise
    store.settled(kept)
    return Sent(message_id, held)


def answered_since(
    connection: sa.Connection, ticket_id: int, author: Account, seen: int
) -> list[int]:
    """Other agents' replies after message `seen`, read under the ticket's row lock, so that
    of two agents sending at the same moment the second one always sees the first."""
    connection.execute(
        sa.update(tickets)
        .where(tickets.c.id == ticket_id)
        .values(updated_at=tickets.c.updated_at)  # takes the lock, changes nothing
    )
    return list(
        connection.execute(
            sa.select(messages.c.id).where(
                messages.c.ticket_id == ticket_id,
                messages.c.id > seen,
                messages.c.from_support.is_(True),
                messages.c.internal.is_(False),
                messages.c.held_at.is_(None),
                messages.c.author_id != author.id,
            )
        ).scalars()
    )


def after_message(
    connection: sa.Connection, ticket: Ticket, author: Account, internal: bool,
    at: dt.datetime, delay: AnswerDelay, resolve: bool = False,
) -> None:  # fmt: skip
    """What a message sent changes on its ticket: status, due date, who handles it."""
    values: dict[str, Any] = {"updated_at": at}
    if author.is_staff and not internal:
        values["status"] = "en_attente"
        if resolve:
            values.update(status="resolu", resolved_at=at)
        if author.is_agent:
            take_if_unassigned(connection, ticket.id, author)
    elif not author.is_staff:
        values.update(status="en_cours", resolved_at=None)
        if ticket.status in ("en_attente", "resolu", "ferme"):
            values["due_at"] = delay.due(at)
    connection.execute(sa.update(tickets).where(tickets.c.id == ticket.id).values(**values))


HELD_GONE = "Cette réponse retenue n'existe plus : elle a déjà été envoyée ou supprimée."


@dataclass(frozen=True)
class Held:
    """A held reply beside the replies that other agents sent while it was written."""

    reply: Message
    others: list[Message]


def held_reply(engine: Engine, ticket: Ticket, author: Account, message_id: int, seen: int) -> Held:
    """The author's held reply, and the other agents' replies after message `seen`."""
    with engine.connect() as connection:
        row = connection.execute(_held(ticket, author, message_id)).first()
        if row is None:
            raise NotFound(HELD_GONE)
        files = connection.execute(
            sa.select(attachments).where(attachments.c.message_id == message_id)
        ).all()
    kept = [Attachment(f.id, f.filename, f.size, f.sha256, f.stored_as, row.created_at)
            for f in files]  # fmt: skip
    reply = Message(
        id=row.id, author=author.name, from_support=True, internal=False, body=row.body,
        created_at=row.created_at, author_id=author.id, attachments=kept,
    )  # fmt: skip
    others = [
        m for m in ticket.messages
        if m.id > seen and m.from_support and not m.internal and m.author_id != author.id
    ]  # fmt: skip
    return Held(reply, others)


def _held(ticket: Ticket, author: Account, message_id: int) -> sa.Select[Any]:
    return sa.select(messages).where(
        messages.c.id == message_id,
        messages.c.ticket_id == ticket.id,
        messages.c.author_id == author.id,
        messages.c.held_at.is_not(None),
    )


def release(
    engine: Engine, ticket: Ticket, author: Account, message_id: int, body: str, seen: int,
    *, delay: AnswerDelay, notify: Callable[[sa.Connection, int], object] | None = None,
    resolve: bool = False,
) -> Sent:  # fmt: skip
    """Send a held reply as its author now words it; held again if yet another agent answered
    after `seen`. `notify` and `resolve` as for `reply`."""
    body = body.strip()
    if len(body) > MESSAGE_MAX:
        raise TicketInvalid({"message": f"Le message compte {MESSAGE_MAX} caractères au plus."})
    at = now()
    with engine.begin() as connection:
        row = connection.execute(_held(ticket, author, message_id)).first()
        if row is None:
            raise NotFound(HELD_GONE)
        has_files = connection.execute(
            sa.select(attachments.c.id).where(attachments.c.message_id == message_id).limit(1)
        ).first()
        if not body and not has_files:
            raise TicketInvalid({"message": "Écrivez votre réponse ou joignez un fichier."})
        if answered_since(connection, ticket.id, author, seen):
            connection.execute(
                sa.update(messages).where(messages.c.id == message_id).values(body=body)
            )
            return Sent(message_id, held=True)
        connection.execute(
            sa.update(messages)
            .where(messages.c.id == message_id)
            .values(body=body, held_at=None, created_at=at)
        )
        after_message(connection, ticket, author, False, at, delay, resolve)
        if notify:
            notify(connection, message_id)
    return Sent(message_id)


def discard(engine: Engine, store: Store, ticket: Ticket, author: Account, message_id: int) -> None:
    """The author gives up a held reply: it goes, with its attachments."""
    with engine.begin() as connection:
        if connection.execute(_held(ticket, author, message_id)).first() is None:
            raise NotFound(HELD_GONE)
        stored: list[str] = list(
            connection.execute(
                sa.select(attachments.c.stored_as).where(attachments.c.message_id == message_id)
            ).scalars()
        )
        connection.execute(sa.delete(attachments).where(attachments.c.message_id == message_id))
        connection.execute(sa.delete(messages).where(messages.c.id == message_id))
    for name in stored:  # after the commit: a failed delete leaves a file, never a dead row
        with contextlib.suppress(OSError):
            store.final_path(name).unlink()
