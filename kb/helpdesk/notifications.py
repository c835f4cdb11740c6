"""What kb writes to people: each e-mail, its French words and its single-use link.

Each function queues its mail in the caller's transaction (kb.helpdesk.outbox): the mail
leaves if, and only if, what it tells about is committed."""

from __future__ import annotations

import dataclasses
import datetime as dt
from email.utils import parseaddr

import sqlalchemy as sa

from kb.clock import in_words
from kb.config import Settings
from kb.helpdesk import accounts, outbox
from kb.helpdesk.accounts import Account
from kb.helpdesk.mail import Mail, address
from kb.tables import attachments, messages

SIGNATURE = "L'équipe d'assistance CPRO éducation"


def _url(settings: Settings, path: str) -> str:
    """Links in mails use the configured address, never a request's Host header (forgeable)."""
    base = settings.base_url or f"http://{settings.host}:{settings.port}"
    return base.rstrip("/") + path


def thread_of(reference: str, settings: Settings) -> str:
    """The Message-ID every mail about a ticket refers to: its acknowledgment's."""
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "localhost"
    return f"<ticket.{reference.lower()}@{domain}>"


def _threaded(
    reference: str, settings: Settings, secret: bytes | None
) -> tuple[tuple[str, str], ...]:
    """One thread per ticket in the reader's mail program; with the secret, "Répondre" goes to
    the ticket's own address, which `kb lmtp` adds to the thread (a plus address of
    KB_MAIL_FROM: without `kb lmtp`, the mail server hands it to that mailbox)."""
    root = thread_of(reference, settings)
    headers = [("In-Reply-To", root), ("References", root)]
    sender = parseaddr(settings.mail_from)[1]
    if secret is not None and "@" in sender:
        from kb.helpdesk.inbound import reply_address  # inbound reads tickets: no cycle

        headers.append(("Reply-To", reply_address(secret, sender, reference)))
    return tuple(headers)


def queue_acknowledgment(
    connection: sa.Connection,
    settings: Settings,
    secret: bytes,
    account: Account,
    reference: str,
    subject: str,
    category: str,
    due_at: dt.datetime,
) -> None:
    """To the establishment: its request is recorded, with its reference and due date."""
    _queue(
        connection,
        settings,
        Mail(
            to=address(account.name, account.email),
            subject=f"[{reference}] Demande enregistrée : {subject}",
            paragraphs=(
                f"Bonjour {account.name},",
                f"Votre demande « {subject} » (catégorie « {category} ») est enregistrée sous la "
                f"référence {reference}. L'équipe d'assistance vous répondra au plus tard le "
                f"{in_words(due_at)}.",
                "Pour compléter votre demande, répondez à cet e-mail ou écrivez dans le fil du "
                "ticket :",
            ),
            link=("Suivre le ticket", _url(settings, f"/tickets/{reference}")),
            after_link=(SIGNATURE,),
            message_id=thread_of(reference, settings),
            headers=tuple(h for h in _threaded(reference, settings, secret) if h[0] == "Reply-To"),
        ),
    )


def _queue(connection: sa.Connection, settings: Settings, mail: Mail) -> str:
    return outbox.enqueue(connection, dataclasses.replace(mail, sender=settings.mail_from))


def queue_activation(connection: sa.Connection, settings: Settings, account: Account) -> None:
    """The first-login e-mail: a single-use link to choose the password."""
    raw = accounts.issue_link(connection, account, "activation", settings.activation_hours)
    who = (
        f"de l'établissement {account.establishment} (code UAI {account.uai})"
        if account.uai
        else ""
    )
    _queue(
        connection,
        settings,
        Mail(
            to=address(account.name, account.email),
            subject="Activez votre compte CPRO éducation",
            paragraphs=(
                f"Bonjour {account.name},",
                f"Un compte {who} vous attend sur CPRO éducation. Pour l'activer, choisissez "
                f"votre mot de passe en suivant ce lien, valable {settings.activation_hours} "
                "heures et utilisable une seule fois :".replace("  ", " "),
            ),
            link=("Choisir mon mot de passe", _url(settings, f"/activation/{raw}")),
            after_link=(
                f"Votre identifiant de connexion : {account.login}.",
                "Si vous n'attendiez pas ce message, ignorez-le : rien ne sera activé.",
                SIGNATURE,
            ),
        ),
    )


def queue_reset(connection: sa.Connection, settings: Settings, account: Account) -> None:
    """'Mot de passe oublié ?': the same kind of link, shorter-lived."""
    purpose = "reset" if account.activated else "activation"
    raw = accounts.issue_link(connection, account, purpose, settings.reset_hours)
    _queue(
        connection,
        settings,
        Mail(
            to=address(account.name, account.email),
            subject="Choisir un nouveau mot de passe CPRO éducation",
            paragraphs=(
                f"Bonjour {account.name},",
                "Une demande de nouveau mot de passe a été faite pour le compte "
                f"{account.login}. Pour choisir votre mot de passe, suivez ce lien, valable "
                f"{settings.reset_hours} heures et utilisable une seule fois :",
            ),
            link=(
                "Choisir un nouveau mot de passe",
                _url(settings, f"/activation/{raw}"),
            ),
            after_link=(
                "Si vous n'êtes pas à l'origine de cette demande, ignorez ce message : "
                "votre mot de passe actuel reste valable.",
                SIGNATURE,
            ),
        ),
    )


def queue_email_change(
    connection: sa.Connection,
    settings: Settings,
    account: Account,
    new_email: str,
) -> None:
    """The confirmation goes to the new address: only its owner can confirm it."""
    raw = accounts.issue_link(
        connection, account, "email_change", settings.reset_hours, new_email=new_email
    )
    _queue(
        connection,
        settings,
        Mail(
            to=address(account.name, new_email),
            subject="Confirmez votre nouvelle adresse e-mail CPRO éducation",
            paragraphs=(
                f"Bonjour {account.name},",
                f"Pour utiliser cette adresse avec le compte {account.login}, confirmez-la en "
                f"suivant ce lien, valable {settings.reset_hours} heures :",
            ),
            link=(
                "Confirmer cette adresse",
                _url(settings, f"/confirmation-email/{raw}"),
            ),
            after_link=(
                "Si vous n'êtes pas à l'origine de cette demande, ignorez ce message : "
                "l'adresse du compte ne changera pas.",
                SIGNATURE,
            ),
        ),
    )


def queue_email_change_notice(
    connection: sa.Connection, settings: Settings, account: Account, new_email: str
) -> None:
    """To the address in use: a change was asked for, with a link that undoes it. The link
    outlives the confirmation, so a borrowed session cannot take the account for good."""
    raw = accounts.issue_link(
        connection, account, "email_cancel", settings.activation_hours, new_email=account.email
    )
    _queue(
        connection,
        settings,
        Mail(
            to=address(account.name, account.email),
            subject="Changement de l'adresse e-mail de votre compte CPRO éducation",
            paragraphs=(
                f"Bonjour {account.name},",
                f"Une demande a été faite pour que le compte {account.login} utilise désormais "
                f"l'adresse {new_email}. Si c'est vous, il n'y a rien à faire.",
                "Si ce n'est pas vous, annulez ce changement : votre adresse sera rétablie, "
                "toutes les sessions ouvertes sur le compte seront fermées et vous recevrez un "
                f"lien pour choisir un nouveau mot de passe. Ce lien reste valable "
                f"{settings.activation_hours} heures, même après la confirmation :",
            ),
            link=("Annuler ce changement", _url(settings, f"/annulation-email/{raw}")),
            after_link=(SIGNATURE,),
        ),
    )


def queue_password_changed(connection: sa.Connection, settings: Settings, account: Account) -> None:
    """A new password was chosen: its owner hears of it, whoever chose it."""
    _queue(
        connection,
        settings,
        Mail(
            to=address(account.name, account.email),
            subject="Votre mot de passe CPRO éducation a été modifié",
            paragraphs=(
                f"Bonjour {account.name},",
                f"Le mot de passe du compte {account.login} vient d'être modifié. Les autres "
                "sessions ouvertes sur le compte ont été fermées et les liens envoyés "
                "auparavant par e-mail ne fonctionnent plus.",
                "Si ce n'est pas vous, choisissez tout de suite un nouveau mot de passe avec "
                "« Mot de passe oublié ? » :",
            ),
            link=("Choisir un nouveau mot de passe", _url(settings, "/mot-de-passe-oublie")),
            after_link=(SIGNATURE,),
        ),
    )


def queue_new_ticket(
    connection: sa.Connection,
    settings: Settings,
    account: Account,
    reference: str,
    subject: str,
    category: str,
    body: str,
) -> None:
    """To the support team: a new ticket to answer."""
    _queue(
        connection,
        settings,
        Mail(
            to=settings.support_email,
            subject=f"[{reference}] {subject}",
            paragraphs=(
                f"Nouveau ticket de {account.name} ({account.establishment or account.login}, "
                f"{account.login}), catégorie « {category} » :",
                body,
            ),
            link=("Ouvrir le ticket", _url(settings, f"/support/tickets/{reference}")),
            after_link=(f"Réponse attendue sous {settings.answer_hours:g} heures ouvrées.",),
            headers=_threaded(reference, settings, None),
        ),
    )


def queue_support_reply(
    connection: sa.Connection,
    settings: Settings,
    account: Account,
    reference: str,
    subject: str,
    message_id: int | None = None,
    secret: bytes | None = None,
) -> None:
    """To the establishment: support's answer itself (its text and the names of its
    attachments), in the ticket's mail thread; answering the mail answers the ticket."""
    said: tuple[str, ...] = ()
    if message_id is not None:
        body: str = connection.execute(
            sa.select(messages.c.body).where(messages.c.id == message_id)
        ).scalar_one()
        names: list[str] = list(
            connection.execute(
                sa.select(attachments.c.filename)
                .where(attachments.c.message_id == message_id)
                .order_by(attachments.c.id)
            ).scalars()
        )
        joined = [f"Pièce jointe : {name}" for name in names]
        said = (*([body] if body else []), *joined)
    _queue(
        connection,
        settings,
        Mail(
            to=address(account.name, account.email),
            subject=f"[{reference}] Réponse du support : {subject}",
            paragraphs=(
                f"Bonjour {account.name},",
                f"L'équipe d'assistance a répondu à votre ticket {reference} « {subject} » :",
                *said,
                "Répondez à cet e-mail, ou depuis le fil du ticket (les pièces jointes s'y "
                "téléchargent) :",
            ),
            link=("Ouvrir le ticket", _url(settings, f"/tickets/{reference}")),
            after_link=(SIGNATURE,),
            headers=_threaded(reference, settings, secret),
        ),
    )
