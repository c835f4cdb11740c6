"""Accounts managed by an administrator on the web: the CLI's rules, every action audited."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kb.clock import now
from kb.config import Settings
from kb.helpdesk import accounts, notifications, provisioning
from kb.helpdesk.accounts import Account, AccountError
from kb.tables import accounts as accounts_table
from kb.tables import audit

PER_PAGE = 50
ADMIN_EVENTS = (
    "admin_account_saved", "admin_account_disabled", "admin_invitation_sent", "admin_import",
)  # fmt: skip
EVENT_LABELS = {
    "admin_account_saved": "Compte créé ou modifié",
    "admin_account_disabled": "Compte désactivé",
    "admin_invitation_sent": "Invitation renvoyée",
    "admin_import": "Import CSV",
}


@dataclass(frozen=True)
class Listing:
    accounts: list[Account]
    total: int
    page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / PER_PAGE))


@dataclass(frozen=True)
class Action:
    at: dt.datetime
    admin: str
    event: str
    detail: str

    @property
    def label(self) -> str:
        return EVENT_LABELS.get(self.event, self.event)


def search(engine: Engine, words: str, role: str, page: int) -> Listing:
    """Accounts whose code, names or e-mail contain every word; by role, then login."""
    conditions: list[Any] = []
    if role in accounts.ROLES:
        conditions.append(accounts_table.c.role == role)
    for word in words.split()[:8]:
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            sa.or_(
                *(
                    column.ilike(pattern, escape="\\")
                    for column in (
                        accounts_table.c.login,
                        accounts_table.c.establishment,
                        accounts_table.c.first_name,
                        accounts_table.c.last_name,
                        accounts_table.c.email,
                    )
                )
            )
        )
    with engine.connect() as connection:
        total = connection.execute(
            sa.select(sa.func.count()).select_from(accounts_table).where(*conditions)
        ).scalar_one()
        ids: list[int] = list(
            connection.execute(
                sa.select(accounts_table.c.id)
                .where(*conditions)
                .order_by(accounts_table.c.role, accounts_table.c.login)
                .limit(PER_PAGE)
                .offset((page - 1) * PER_PAGE)
            ).scalars()
        )
    found = [a for a in (accounts.get(engine, i) for i in ids) if a is not None]
    return Listing(found, int(total), page)


def _record(engine: Engine, admin: Account, event: str, detail: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.insert(audit).values(
                at=now(), event=event, login=admin.login, account_id=admin.id, detail=detail[:500]
            )
        )


def problems(
    *, role: str, login: str, establishment: str, first_name: str, last_name: str, email: str
) -> dict[str, str]:
    """Everything `save` would refuse in these values, all at once, by argument name."""
    found: dict[str, str] = {}
    if role not in accounts.ROLES:
        found["role"] = "Choisissez un rôle dans la liste."
    if role == "etablissement":
        if not login.strip():
            found["login"] = f"Indiquez le code UAI de l'établissement. {accounts.UAI_HELP}"
        elif "@" in login:
            found["login"] = "Un établissement se connecte avec son code UAI, pas une adresse."
        else:
            try:
                accounts.normalize_uai(login)
            except AccountError as exc:
                found["login"] = exc.message
        if not establishment.strip():
            found["establishment"] = "Le nom de l'établissement est obligatoire."
    for key, value, label in (
        ("first_name", first_name, "prénom"),
        ("last_name", last_name, "nom"),
    ):
        if not value.strip():
            found[key] = f"Le {label} du contact est obligatoire."
    if not email.strip():
        found["email"] = "Indiquez l'adresse e-mail du contact : l'invitation y est envoyée."
    else:
        try:
            accounts.normalize_email(email)
        except AccountError as exc:
            found["email"] = exc.message
    return found


def save(
    engine: Engine, settings: Settings, admin: Account, *, role: str,
    login: str, establishment: str, first_name: str, last_name: str, email: str,
) -> tuple[Account, str]:  # fmt: skip
    """Create or update an account as `kb accounts add` does, and invite it if not active."""
    if role not in accounts.ROLES:
        raise AccountError("Choisissez un rôle dans la liste.")
    if role == "etablissement" and "@" in login:
        raise AccountError("Un établissement se connecte avec son code UAI, pas une adresse.")
    if role != "etablissement":
        login = email  # staff log in with their e-mail address, as on the command line
    account, outcome = accounts.save(
        engine, role=role, login=login, establishment=establishment if role == "etablissement"
        else "", first_name=first_name, last_name=last_name, email=email,
    )  # fmt: skip
    _record(engine, admin, "admin_account_saved", f"{account.login} ({role}) : {outcome}")
    if outcome == "créé" and not account.activated:
        with engine.begin() as connection:  # sent by the background sender, never in the request
            notifications.queue_activation(connection, settings, account)
    return account, outcome


def disable(engine: Engine, admin: Account, account_id: int) -> Account:
    target = _target(engine, account_id)
    if target.id == admin.id:
        raise AccountError("Vous ne pouvez pas désactiver votre propre compte.")
    disabled = accounts.disable(engine, target.login)  # sessions end, audited as by the CLI
    _record(engine, admin, "admin_account_disabled", disabled.login)
    return disabled


def invite(engine: Engine, settings: Settings, admin: Account, account_id: int) -> Account:
    """The activation e-mail again, as `kb accounts invite`."""
    target = _target(engine, account_id)
    if target.disabled:
        raise AccountError("Ce compte est désactivé : il ne reçoit plus d'invitation.")
    if target.activated:
        raise AccountError(
            "Ce compte est déjà activé : il peut utiliser « Mot de passe oublié ? »."
        )
    with engine.begin() as connection:
        notifications.queue_activation(connection, settings, target)
    _record(engine, admin, "admin_invitation_sent", target.login)
    return target


def import_csv(
    engine: Engine, settings: Settings, admin: Account, path: Path, name: str
) -> provisioning.ImportReport:
    """`kb accounts import` on an uploaded file; its problems name the file as uploaded."""
    report = provisioning.import_csv(engine, settings, path)
    report.problems = [p.replace(str(path), name, 1) for p in report.problems]
    _record(engine, admin, "admin_import", f"{name} : {report.summary()}")
    return report


def _target(engine: Engine, account_id: int) -> Account:
    found = accounts.get(engine, account_id)
    if found is None:
        raise AccountError("Ce compte n'existe pas.")
    return found


def recent_actions(engine: Engine, limit: int = 30) -> list[Action]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(audit.c.at, audit.c.login, audit.c.event, audit.c.detail)
            .where(audit.c.event.in_(ADMIN_EVENTS))
            .order_by(audit.c.at.desc(), audit.c.id.desc())
            .limit(limit)
        ).all()
    return [Action(r.at, r.login or "", r.event, r.detail or "") for r in rows]
