"""Writing to tickets, each in one transaction: a new ticket, a message with its attachments
(files moved in place, resumable uploads taken, one size limit), a status."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kb.errors import BadRequest
from kb.helpdesk.accounts import Account, now
from kb.helpdesk.assignment import take_if_unassigned
from kb.helpdesk.attachments import ReceivedForm, Store, too_large
from kb.helpdesk.business_hours import AnswerDelay
from kb.helpdesk.tickets import (
    CATEGORY_REQUIRED,
    MESSAGE_MAX,
    STATUSES,
    SUBJECT_MAX,
    Ticket,
    TicketInvalid,
)
from kb.helpdesk.uploads import Upload
from kb.tables import attachments, messages, tickets
from kb.tables import uploads as uploads_table


def validate(form: ReceivedForm, categories: dict[str, str]) -> tuple[str, str, str]:
    """(category, subject, message) or every problem at once, in French."""
    category = form.fields.get("categorie", "").strip()
    subject = " ".join(form.fields.get("sujet", "").split())
    body = form.fields.get("message", "").strip()
    errors: dict[str, str] = {}
    if category not in categories:
        errors["categorie"] = CATEGORY_REQUIRED
    if not subject:
        errors["sujet"] = "Indiquez l'objet de votre demande en quelques mots."
    elif len(subject) > SUBJECT_MAX:
        errors["sujet"] = f"L'objet compte {SUBJECT_MAX} caractères au plus."
    if not body:
        errors["message"] = "Décrivez votre demande : ce que vous faisiez, ce qui s'est passé."
    elif len(body) > MESSAGE_MAX:
        errors["message"] = f"Le message compte {MESSAGE_MAX} caractères au plus."
    if errors:
        raise TicketInvalid(errors)
    return category, subject, body


def create(
    engine: Engine,
    store: Store,
    account: Account,
    form: ReceivedForm,
    categories: dict[str, str],
    *,
    delay: AnswerDelay,
    limit: int,
    uploaded: Sequence[Upload] = (),
    upload_paths: Mapping[str, Path] | None = None,
    channel: str = "web",
    opened_by: Account | None = None,
    notify: Callable[[sa.Connection, str], object] | None = None,
) -> tuple[str, bool]:
    """The ticket, its first message and its attachments, all or nothing: (reference, created).

    `notify(connection, reference)` queues its mails in the same transaction. A second
    submission of the same form (same token) gives the first ticket back, and no mail. An agent
    opening a ticket for an establishment (`opened_by`, `channel`) takes it, and the request
    is the establishment's, as it said it.
    """
    category, subject, body = validate(form, categories)
    # The token is the account's own: another account sending the same one makes its own
    # ticket, and never learns the reference of someone else's.
    typed = form.fields.get("jeton", "").strip()[:40]
    token = f"{account.id}:{typed}" if typed else None
    if token:
        existing = _by_token(engine, token)
        if existing:
            form.discard()
            return existing, False
    created = now()
    kept: list[tuple[str, Path | None]] = []
    uploaded = distinct(uploaded)
    try:
        with engine.begin() as connection:
            check_total(connection, form, uploaded, limit)
            ticket_id: int = connection.execute(
                sa.insert(tickets)
                .values(
                    account_id=account.id,
                    category=category,
                    subject=subject,
                    status="nouveau",
                    created_at=created,
                    due_at=delay.due(created),
                    updated_at=created,
                    creation_token=token,
                    channel=channel,
                    opened_by_id=opened_by.id if opened_by else None,
                )
                .returning(tickets.c.id)
            ).scalar_one()
            reference = f"T-{created.year}-{ticket_id:06d}"
            connection.execute(
                sa.update(tickets).where(tickets.c.id == ticket_id).values(reference=reference)
            )
            add_message(
                connection, store, ticket_id, account, body, form, created, kept,
                uploaded=uploaded, upload_paths=upload_paths,
            )  # fmt: skip
            if opened_by is not None:
                take_if_unassigned(connection, ticket_id, opened_by)
            if notify:
                notify(connection, reference)
    except sa.exc.IntegrityError:
        store.forget(kept)
        form.discard()
        existing = _by_token(engine, token) if token else None
        if existing is None:
            raise
        return existing, False
    except BaseException:
        store.forget(kept)
        form.discard()
        raise
    store.settled(kept)
    return reference, True


def distinct(uploaded: Sequence[Upload]) -> list[Upload]:
    """An upload named twice in a form is attached (and counted) once."""
    return list({upload.id: upload for upload in uploaded}.values())


def check_total(
    connection: sa.Connection, form: ReceivedForm, uploaded: Sequence[Upload], limit: int
) -> None:
    """One limit for a message whatever path its files took (the form, or finished resumable
    uploads), checked before anything is attached; the sizes of the uploads are read in the
    transaction that attaches them."""
    total = sum(received.size for received in form.files)
    if uploaded:
        total += connection.execute(
            sa.select(sa.func.coalesce(sa.func.sum(uploads_table.c.length), 0)).where(
                uploads_table.c.id.in_([upload.id for upload in uploaded])
            )
        ).scalar_one()
    if total > limit:
        raise too_large(limit)


def _by_token(engine: Engine, token: str) -> str | None:
    with engine.connect() as connection:
        return connection.execute(
            sa.select(tickets.c.reference).where(tickets.c.creation_token == token)
        ).scalar()


def add_message(
    connection: sa.Connection,
    store: Store,
    ticket_id: int,
    author: Account,
    body: str,
    form: ReceivedForm,
    at: dt.datetime,
    kept: list[tuple[str, Path | None]],
    internal: bool = False,
    uploaded: Sequence[Upload] = (),
    upload_paths: Mapping[str, Path] | None = None,
    held: bool = False,
) -> int:
    upload_paths = upload_paths or {}
    message_id: int = connection.execute(
        sa.insert(messages)
        .values(
            ticket_id=ticket_id,
            author_id=author.id,
            from_support=author.is_staff,
            internal=internal,
            body=body,
            created_at=at,
            held_at=at if held else None,
        )
        .returning(messages.c.id)
    ).scalar_one()
    for received in form.files:
        attach(
            connection, store, message_id, at, kept, received.temp_path, None,
            received.filename, received.size, received.sha256, received.content_type,
        )  # fmt: skip
    for upload in uploaded:
        # A finished resumable upload is moved into the attachments, never copied.
        deleted = connection.execute(
            sa.delete(uploads_table).where(
                uploads_table.c.id == upload.id, uploads_table.c.completed_at.is_not(None)
            )
        ).rowcount
        if deleted != 1:
            gone = f"« {upload.filename} » n'est plus disponible : joignez-le à nouveau."
            raise TicketInvalid({"fichiers": gone})
        # On failure it goes back where it was, ready to be attached again.
        source = upload_paths[upload.id]
        attach(connection, store, message_id, at, kept, source, source, upload.filename,
                upload.length, upload.sha256 or "", upload.content_type)  # fmt: skip
    return int(message_id)


def attach(
    connection: sa.Connection,
    store: Store,
    message_id: int,
    at: dt.datetime,
    kept: list[tuple[str, Path | None]],
    source: Path,
    restore_to: Path | None,
    filename: str,
    size: int,
    sha256: str,
    content_type: str,
) -> None:
    """Move a file in place (never a copy) and record it as one of the message's attachments."""
    stored_as = store.keep(source, at.year, at.month)
    kept.append((stored_as, restore_to))
    connection.execute(
        sa.insert(attachments).values(
            message_id=message_id, filename=filename, stored_as=stored_as, size=size,
            sha256=sha256, content_type=content_type,
        )
    )  # fmt: skip


def set_status(
    engine: Engine, ticket: Ticket, status: str, *, delay: AnswerDelay,
    notify: Callable[[sa.Connection], object] | None = None,
) -> None:  # fmt: skip
    """`notify(connection)` queues its mails in the same transaction."""
    if status not in STATUSES:
        raise BadRequest(f"Statut inconnu « {status} ».")
    at = now()
    values: dict[str, Any] = {"status": status, "updated_at": at}
    if status == "resolu":
        values["resolved_at"] = at
    elif ticket.status in ("resolu", "ferme"):  # reopened: support has a new full delay
        values.update(resolved_at=None, due_at=delay.due(at))
    with engine.begin() as connection:
        connection.execute(sa.update(tickets).where(tickets.c.id == ticket.id).values(**values))
        if notify:
            notify(connection)
