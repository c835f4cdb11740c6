"""What kb writes to people: each e-mail, its French words and its single-use link.

Each function queues its mail in the caller's transaction (kb.helpdesk.outbox): the mail
leaves if, and only if, what it tells about is committed."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

import sqlalchemy as sa

from kb.clock import in_words
from kb.config import Settings
from kb.helpdesk import accounts, outbox
from kb.helpdesk.accounts import Account
from kb.helpdesk.mail import Mail, address
from kb.helpdesk.satisfaction import link_token
from kb.tables import accounts as accounts_table
from kb.tables import attachments, messages, ratings, tickets

SIGNATURE = "L'équipe d'assistance CPRO éducation"


def _url(settings: Settings, path: str) -> str:
    """Links in mails use the configured address, never a request's Host header (forgeable)."""
    base = settings.base_url or f"http://{settings.host}:{settings.port}"
    return base.rstrip("/") + path


@dataclass(frozen=True)
class Links:
    """The pages mails send people to, found by route name (`path_for`: the web's routes) on
    KB_BASE_URL; built once by create_app."""

    settings: Settings
    path_for: Callable[..., Any]

    def __call__(self, name: str, **params: str) -> str:
        return _url(self.settings, str(self.path_for(name, **params)))


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


def _queue(connection: sa.Connection, settings: Settings, mail: Mail) -> str:
    return outbox.enqueue(connection, dataclasses.replace(mail, sender=settings.mail_from))


def _to_account(
    connection: sa.Connection,
    settings: Settings,
    account: Account,
    subject: str,
    said: tuple[str, ...],
    link: tuple[str, str] | None,
    after: tuple[str, ...] = (),
    *,
    email: str = "",
    **mail: Any,
) -> str:
    """A mail to a person: greeting, what is said, the link, what follows it, the signature."""
    return _queue(
        connection,
        settings,
        Mail(
            to=address(account.name, email or account.email),
            subject=subject,
            paragraphs=(f"Bonjour {account.name},", *said),
            link=link,
            after_link=(*after, SIGNATURE),
            **mail,
        ),
    )


def queue_acknowledgment(
    connection: sa.Connection,
    settings: Settings,
    secret: bytes,
    account: Account,
    reference: str,
    subject: str,
    category: str,
    due_at: dt.datetime,
    links: Links,
) -> None:
    """To the establishment: its request is recorded, with its reference and due date."""
    _to_account(
        connection, settings, account, f"[{reference}] Demande enregistrée : {subject}",
        (
            f"Votre demande « {subject} » (catégorie « {category} ») est enregistrée sous la "
            f"référence {reference}. L'équipe d'assistance vous répondra au plus tard le "
            f"{in_words(due_at)}.",
            "Pour compléter votre demande, répondez à cet e-mail ou écrivez dans le fil du "
            "ticket :",
        ),
        ("Suivre le ticket", links("ticket", reference=reference)),
        message_id=thread_of(reference, settings),
        headers=tuple(h for h in _threaded(reference, settings, secret) if h[0] == "Reply-To"),
    )  # fmt: skip


def queue_activation(connection: sa.Connection, settings: Settings, account: Account) -> None:
    """The first-login e-mail: a single-use link to choose the password."""
    raw = accounts.issue_link(connection, account, "activation", settings.activation_hours)
    who = (
        f"de l'établissement {account.establishment} (code UAI {account.uai})"
        if account.uai
        else ""
    )
    _to_account(
        connection, settings, account, "Activez votre compte CPRO éducation",
        (
            f"Un compte {who} vous attend sur CPRO éducation. Pour l'activer, choisissez "
            f"votre mot de passe en suivant ce lien, valable {settings.activation_hours} "
            "heures et utilisable une seule fois :".replace("  ", " "),
        ),
        ("Choisir mon mot de passe", _url(settings, f"/activation/{raw}")),
        (
            f"Votre identifiant de connexion : {account.login}.",
            "Si vous n'attendiez pas ce message, ignorez-le : rien ne sera activé.",
        ),
    )  # fmt: skip


def queue_reset(connection: sa.Connection, settings: Settings, account: Account) -> None:
    """'Mot de passe oublié ?': the same kind of link, shorter-lived."""
    purpose = "reset" if account.activated else "activation"
    raw = accounts.issue_link(connection, account, purpose, settings.reset_hours)
    _to_account(
        connection, settings, account, "Choisir un nouveau mot de passe CPRO éducation",
        (
            "Une demande de nouveau mot de passe a été faite pour le compte "
            f"{account.login}. Pour choisir votre mot de passe, suivez ce lien, valable "
            f"{settings.reset_hours} heures et utilisable une seule fois :",
        ),
        ("Choisir un nouveau mot de passe", _url(settings, f"/activation/{raw}")),
        (
            "Si vous n'êtes pas à l'origine de cette demande, ignorez ce message : "
            "votre mot de passe actuel reste valable.",
        ),
    )  # fmt: skip


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
    _to_account(
        connection, settings, account, "Confirmez votre nouvelle adresse e-mail CPRO éducation",
        (
            f"Pour utiliser cette adresse avec le compte {account.login}, confirmez-la en "
            f"suivant ce lien, valable {settings.reset_hours} heures :",
        ),
        ("Confirmer cette adresse", _url(settings, f"/confirmation-email/{raw}")),
        (
            "Si vous n'êtes pas à l'origine de cette demande, ignorez ce message : "
            "l'adresse du compte ne changera pas.",
        ),
        email=new_email,
    )  # fmt: skip


def queue_email_change_notice(
    connection: sa.Connection, settings: Settings, account: Account, new_email: str
) -> None:
    """To the address in use: a change was asked for, with a link that undoes it. The link
    outlives the confirmation, so a borrowed session cannot take the account for good."""
    raw = accounts.issue_link(
        connection, account, "email_cancel", settings.activation_hours, new_email=account.email
    )
    _to_account(
        connection, settings, account,
        "Changement de l'adresse e-mail de votre compte CPRO éducation",
        (
            f"Une demande a été faite pour que le compte {account.login} utilise désormais "
            f"l'adresse {new_email}. Si c'est vous, il n'y a rien à faire.",
            "Si ce n'est pas vous, annulez ce changement : votre adresse sera rétablie, "
            "toutes les sessions ouvertes sur le compte seront fermées et vous recevrez un "
            f"lien pour choisir un nouveau mot de passe. Ce lien reste valable "
            f"{settings.activation_hours} heures, même après la confirmation :",
        ),
        ("Annuler ce changement", _url(settings, f"/annulation-email/{raw}")),
    )  # fmt: skip


def queue_password_changed(connection: sa.Connection, settings: Settings, account: Account) -> None:
    """A new password was chosen: its owner hears of it, whoever chose it."""
    _to_account(
        connection, settings, account, "Votre mot de passe CPRO éducation a été modifié",
        (
            f"Le mot de passe du compte {account.login} vient d'être modifié. Les autres "
            "sessions ouvertes sur le compte ont été fermées et les liens envoyés "
            "auparavant par e-mail ne fonctionnent plus.",
            "Si ce n'est pas vous, choisissez tout de suite un nouveau mot de passe avec "
            "« Mot de passe oublié ? » :",
        ),
        ("Choisir un nouveau mot de passe", _url(settings, "/mot-de-passe-oublie")),
    )  # fmt: skip


def queue_new_ticket(
    connection: sa.Connection,
    settings: Settings,
    account: Account,
    reference: str,
    subject: str,
    category: str,
    body: str,
    links: Links,
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
            link=("Ouvrir le ticket", links("support_ticket", reference=reference)),
            after_link=(f"Réponse attendue sous {settings.answer_hours:g} heures ouvrées.",),
            headers=_threaded(reference, settings, None),
        ),
    )


def _said(connection: sa.Connection, message_id: int) -> tuple[str, ...]:
    """A message as a mail quotes it: its text, then the names of its attachments."""
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
    return (*([body] if body else []), *(f"Pièce jointe : {name}" for name in names))


def rating_choices(links: Links, secret: bytes, reference: str) -> tuple[tuple[str, str], ...]:
    """The one-click "Satisfait" / "Pas satisfait": each opens the ticket's rating page, the
    choice made, without logging in (a signed link that rates this ticket only)."""
    page = links("rating_link", reference=reference, token=link_token(secret, reference))
    return (
        ("Satisfait", f"{page}?note=satisfait"),
        ("Pas satisfait", f"{page}?note=pas_satisfait"),
    )


def queue_support_reply(
    connection: sa.Connection,
    settings: Settings,
    account: Account,
    reference: str,
    subject: str,
    message_id: int | None = None,
    secret: bytes | None = None,
    links: Links | None = None,
    resolved: bool = False,
) -> None:
    """To the establishment: support's answer itself (its text and the names of its
    attachments), in the ticket's mail thread; answering the mail answers the ticket.
    `resolved` (with `links` and `secret`): support resolved the ticket, with or without an
    answer; the mail asks for the establishment's opinion with one click."""
    said = _said(connection, message_id) if message_id is not None else ()
    if resolved:
        title = f"[{reference}] Demande résolue : {subject}"
        intro = (
            f"L'équipe d'assistance a répondu à votre ticket {reference} « {subject} » et "
            "considère votre demande comme résolue :"
            if said
            else f"L'équipe d'assistance considère votre ticket {reference} « {subject} » "
            "comme résolu."
        )
        ask = "Êtes-vous satisfait de la réponse du support ? Un clic suffit :"
        follow = (
            "Si votre demande n'est pas réglée, répondez à cet e-mail ou écrivez dans le fil du "
            "ticket : il sera rouvert."
        )
    else:
        title = f"[{reference}] Réponse du support : {subject}"
        intro = f"L'équipe d'assistance a répondu à votre ticket {reference} « {subject} » :"
        ask = ""
        follow = (
            "Répondez à cet e-mail, ou depuis le fil du ticket (les pièces jointes s'y "
            "téléchargent) :"
        )
    choices = rating_choices(links, secret, reference) if resolved and links and secret else ()
    page = (
        links("ticket", reference=reference) if links else _url(settings, f"/tickets/{reference}")
    )
    _to_account(
        connection, settings, account, title,
        (intro, *said, follow, *([ask] if choices else [])),
        ("Ouvrir le ticket", page),
        headers=_threaded(reference, settings, secret),
        choices=choices,
    )  # fmt: skip


def queue_establishment_news(
    connection: sa.Connection,
    settings: Settings,
    links: Links,
    secret: bytes,
    ticket_id: int,
    author: Account,
    message_id: int | None = None,
) -> None:
    """To the agent handling the ticket (the support address when nobody does): the
    establishment answered (`message_id`, quoted) or marked its ticket resolved."""
    row = connection.execute(
        sa.select(
            tickets.c.reference,
            tickets.c.subject,
            accounts_table.c.first_name,
            accounts_table.c.last_name,
            accounts_table.c.email,
        )
        .outerjoin(
            accounts_table,
            sa.and_(
                accounts_table.c.id == tickets.c.assignee_id,
                accounts_table.c.disabled_at.is_(None),
            ),
        )
        .where(tickets.c.id == ticket_id)
    ).one()
    to = (
        address(f"{row.first_name} {row.last_name}", row.email)
        if row.email
        else settings.support_email
    )
    who = f"{author.name} ({author.establishment or author.login}, {author.login})"
    if message_id is None:
        title = f"[{row.reference}] Résolu par l'établissement : {row.subject}"
        said: tuple[str, ...] = (f"{who} a marqué le ticket comme résolu.",)
    else:
        title = f"[{row.reference}] Réponse de l'établissement : {row.subject}"
        said = (f"{who} a répondu au ticket {row.reference} :", *_said(connection, message_id))
    _queue(
        connection,
        settings,
        Mail(
            to=to,
            subject=title,
            paragraphs=said,
            link=("Ouvrir le ticket", links("support_ticket", reference=row.reference)),
            headers=_threaded(row.reference, settings, secret),
        ),
    )


def queue_closed(
    connection: sa.Connection, settings: Settings, links: Links, secret: bytes, ticket_id: int
) -> None:
    """To the establishment: its resolved ticket, not reopened, is closed for good; its opinion
    is asked once more if it gave none."""
    row = connection.execute(
        sa.select(
            tickets.c.reference,
            tickets.c.subject,
            tickets.c.account_id,
            ratings.c.ticket_id.label("rated"),
        )
        .outerjoin(ratings, ratings.c.ticket_id == tickets.c.id)
        .where(tickets.c.id == ticket_id)
    ).one()
    owner = accounts.read(connection, row.account_id)
    if owner is None or owner.disabled:
        return
    reference = row.reference
    choices = () if row.rated else rating_choices(links, secret, reference)
    _to_account(
        connection, settings, owner, f"[{reference}] Ticket fermé : {row.subject}",
        (
            f"Votre ticket {reference} « {row.subject} », résolu et non rouvert depuis "
            f"{settings.close_after_days} jours ouvrés, est maintenant fermé : on ne peut plus "
            "y répondre. Pour une nouvelle question, créez un ticket d'aide en citant sa "
            "référence.",
            *(["Êtes-vous satisfait de la réponse du support ? Un clic suffit :"]
              if choices else []),
        ),
        ("Voir le ticket", links("ticket", reference=reference)),
        # Threaded, but no Reply-To: an answer to a closed ticket would only bounce.
        headers=_threaded(reference, settings, None),
        choices=choices,
    )  # fmt: skip
