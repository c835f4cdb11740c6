"""Accounts: UAI codes, e-mail addresses, passwords, single-use links, provisioning."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine

from kb.errors import KbError
from kb.tables import accounts, audit, sessions, tokens

ROLES = ("etablissement", "agent", "editeur", "admin")
ROLE_LABELS = {
    "etablissement": "Établissement", "agent": "Support", "editeur": "Éditeur",
    "admin": "Administrateur",
}  # fmt: skip
AGENT_ROLES = ("agent", "admin")
UAI_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
UAI_RE = re.compile(r"^\d{7}[A-Z]$")
EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")
UAI_HELP = "Un code UAI compte 7 chiffres suivis d'une lettre, par exemple 0750654D."
PASSWORD_MIN = 12

_hasher = PasswordHasher()  # argon2id with the library's current recommended costs


class AccountError(KbError):
    status = 400
    code = "compte_invalide"


class LinkInvalid(KbError):
    status = 410
    code = "lien_invalide"


@dataclass(frozen=True)
class Account:
    id: int
    login: str
    role: str
    establishment: str
    first_name: str
    last_name: str
    email: str
    activated: bool
    disabled: bool

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def uai(self) -> str | None:
        return self.login if self.role == "etablissement" else None

    @property
    def is_staff(self) -> bool:
        return self.role in ("agent", "editeur", "admin")

    @property
    def is_agent(self) -> bool:
        """Works the tickets: an agent, or an administrator (an agent who also manages accounts)."""
        return self.role in AGENT_ROLES


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def uai_check_letter(digits: str) -> str:
    return UAI_LETTERS[int(digits) % 23]


def normalize_uai(raw: str) -> str:
    """'0750654d ' -> '0750654D'; a malformed code or a wrong letter says what a UAI is."""
    code = raw.strip().upper().replace(" ", "")
    if not UAI_RE.match(code):
        raise AccountError(f"« {raw.strip()} » n'est pas un code UAI. {UAI_HELP}")
    if code[7] != uai_check_letter(code[:7]):
        raise AccountError(
            f"Le code UAI « {code} » n'existe pas : sa lettre de contrôle ne correspond pas "
            f"à ses chiffres. Vérifiez-le. {UAI_HELP}"
        )
    return code


def normalize_email(raw: str) -> str:
    email = raw.strip().lower()
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise AccountError(f"« {raw.strip()} » n'est pas une adresse e-mail valide.")
    return email


def normalize_login(raw: str) -> str:
    """A login is an e-mail address (agents, editors) or else a UAI code."""
    return normalize_email(raw) if "@" in raw else normalize_uai(raw)


def _account(row: Any) -> Account:
    return Account(
        id=row.id,
        login=row.login,
        role=row.role,
        establishment=row.establishment,
        first_name=row.first_name,
        last_name=row.last_name,
        email=row.email,
        activated=row.password_hash is not None,
        disabled=row.disabled_at is not None,
    )


def get(engine: Engine, account_id: int) -> Account | None:
    with engine.connect() as connection:
        return read(connection, account_id)


def read(connection: sa.Connection, account_id: int) -> Account | None:
    """The account, as the caller's transaction sees it."""
    row = connection.execute(sa.select(accounts).where(accounts.c.id == account_id)).first()
    return _account(row) if row else None


def by_login(engine: Engine, login: str) -> Account | None:
    with engine.connect() as connection:
        row = connection.execute(sa.select(accounts).where(accounts.c.login == login)).first()
    return _account(row) if row else None


def all_accounts(engine: Engine) -> list[Account]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(accounts).order_by(accounts.c.role, accounts.c.login))
        return [_account(row) for row in rows]


def _one_line(text: str) -> str:
    """Names on one line, without control characters (a CSV cell may hold a line break)."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _check_fields(role: str, establishment: str, first_name: str, last_name: str) -> None:
    if role not in ROLES:
        raise AccountError(f"Rôle inconnu « {role} » : {', '.join(ROLES)}.")
    for label, value in (("prénom", first_name), ("nom", last_name)):
        if not value.strip():
            raise AccountError(f"Le {label} du contact est obligatoire.")
    if role == "etablissement" and not establishment.strip():
        raise AccountError("Le nom de l'établissement est obligatoire.")


def save(
    engine: Engine,
    *,
    role: str,
    login: str,
    establishment: str,
    first_name: str,
    last_name: str,
    email: str,
) -> tuple[Account, str]:
    """Create the account, or update it to these values: (account, 'créé'|'modifié'|'inchangé')."""
    login = normalize_email(login) if role != "etablissement" else normalize_uai(login)
    email = normalize_email(email)
    _check_fields(role, establishment, first_name, last_name)
    values = {
        "role": role,
        "establishment": _one_line(establishment),
        "first_name": _one_line(first_name),
        "last_name": _one_line(last_name),
        "email": email,
    }
    with engine.begin() as connection:
        row = connection.execute(sa.select(accounts).where(accounts.c.login == login)).first()
        if row is None:
            connection.execute(sa.insert(accounts).values(login=login, created_at=now(), **values))
            outcome = "créé"
        elif any(getattr(row, k) != v for k, v in values.items()):
            connection.execute(sa.update(accounts).where(accounts.c.id == row.id).values(**values))
            outcome = "modifié"
        else:
            outcome = "inchangé"
        row = connection.execute(sa.select(accounts).where(accounts.c.login == login)).one()
    return _account(row), outcome


def disable(engine: Engine, login: str) -> Account:
    """No more logins, and every open session ends."""
    account = by_login(engine, normalize_login(login))
    if account is None:
        raise AccountError(f"Aucun compte « {login} ».")
    with engine.begin() as connection:
        connection.execute(
            sa.update(accounts).where(accounts.c.id == account.id).values(disabled_at=now())
        )
        connection.execute(sa.delete(sessions).where(sessions.c.account_id == account.id))
        _audit(connection, "account_disabled", account)
    return account


# --- passwords ------------------------------------------------------------------------------


@cache
def _common_passwords() -> frozenset[str]:
    path = Path(__file__).with_name("common_passwords.txt")
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line and not line.startswith("#"))


def password_problem(password: str, account: Account) -> str | None:
    """Why this password is refused, in French, or None."""
    if len(password) < PASSWORD_MIN:
        return f"Le mot de passe doit compter au moins {PASSWORD_MIN} caractères."
    lowered = password.lower()
    if account.login.lower() in lowered or (account.uai and account.uai[:7] in password):
        return "Le mot de passe ne doit pas contenir le code UAI ni l'identifiant."
    squeezed = re.sub(r"[\W_]+", "", lowered)
    if (
        lowered in _common_passwords()
        or squeezed in _common_passwords()
        or len(set(password)) <= 3
        or squeezed in "0123456789012345678901234567890"
        or squeezed in "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
        or squeezed in "azertyuiopqsdfghjklmwxcvbnazertyuiop"
    ):
        return "Ce mot de passe est trop connu : choisissez-en un autre, plus personnel."
    return None


# A cancel link is held by the previous address's owner to undo a takeover: nothing the new
# holder of the account does (a new password, another change) may take it back.
KEPT_LINKS = ("email_cancel",)


def _end_links(connection: sa.Connection, account: Account, *purposes: str) -> None:
    """Unused links of the account stop working (all of them but cancel links by default)."""
    statement = (
        sa.update(tokens)
        .where(tokens.c.account_id == account.id, tokens.c.used_at.is_(None))
        .values(used_at=now())
    )
    if purposes:
        statement = statement.where(tokens.c.purpose.in_(purposes))
    else:
        statement = statement.where(tokens.c.purpose.not_in(KEPT_LINKS))
    connection.execute(statement)


def set_password(engine: Engine, account: Account, password: str) -> None:
    """The new password; every link mailed before it (reset, activation, e-mail change) dies."""
    problem = password_problem(password, account)
    if problem:
        raise AccountError(problem)
    with engine.begin() as connection:
        _end_links(connection, account)
        connection.execute(
            sa.update(accounts)
            .where(accounts.c.id == account.id)
            .values(
                password_hash=_hasher.hash(password),
                activated_at=sa.func.coalesce(accounts.c.activated_at, now()),
            )
        )
        _audit(connection, "password_set", account)


def verify_password(engine: Engine, account: Account | None, password: str) -> bool:
    """Constant work whether or not the account exists, so timing tells nothing."""
    stored = None
    if account is not None:
        with engine.connect() as connection:
            stored = connection.execute(
                sa.select(accounts.c.password_hash).where(accounts.c.id == account.id)
            ).scalar()
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


# --- single-use links -----------------------------------------------------------------------


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_link(
    connection: sa.Connection,
    account: Account,
    purpose: str,
    hours: int,
    new_email: str | None = None,
) -> str:
    """A new single-use token, in the caller's transaction (with the mail that carries it);
    the earlier unused ones for the same purpose stop working (except cancel links: each
    undoes its own change)."""
    raw = secrets.token_urlsafe(32)
    if purpose not in KEPT_LINKS:
        _end_links(connection, account, purpose)
    connection.execute(
        sa.insert(tokens).values(
            digest=_digest(raw),
            account_id=account.id,
            purpose=purpose,
            new_email=new_email,
            created_at=now(),
            expires_at=now() + dt.timedelta(hours=hours),
        )
    )
    return raw


EXPIRED = "Ce lien a expiré ou a déjà été utilisé."


def check_link(engine: Engine, raw: str, purposes: tuple[str, ...]) -> tuple[Account, Any]:
    """The account a valid, unused, unexpired link belongs to (without using it)."""
    with engine.connect() as connection:
        row = connection.execute(sa.select(tokens).where(tokens.c.digest == _digest(raw))).first()
    if row is None or row.purpose not in purposes or row.used_at is not None:
        raise LinkInvalid(EXPIRED)
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=dt.UTC)
    if expires <= now():
        raise LinkInvalid(EXPIRED)
    account = get(engine, row.account_id)
    if account is None or account.disabled:
        raise LinkInvalid(EXPIRED)
    return account, row


def use_link(engine: Engine, raw: str, purposes: tuple[str, ...]) -> tuple[Account, Any]:
    """Mark the link used; a second use, even at the same moment, fails."""
    account, row = check_link(engine, raw, purposes)
    with engine.begin() as connection:
        used = connection.execute(
            sa.update(tokens)
            .where(tokens.c.digest == row.digest, tokens.c.used_at.is_(None))
            .values(used_at=now())
        ).rowcount
    if used != 1:
        raise LinkInvalid(EXPIRED)
    return account, row


def change_email(engine: Engine, account: Account, email: str) -> None:
    """Confirmed from the new address: it is the account's; other pending changes die."""
    with engine.begin() as connection:
        connection.execute(
            sa.update(accounts).where(accounts.c.id == account.id).values(email=email)
        )
        _end_links(connection, account, "email_change")
        _audit(connection, "email_changed", account, detail=email)


def cancel_email_change(engine: Engine, account: Account, previous: str) -> None:
    """The previous address's owner says it was not them: their address comes back, every
    session ends and every link mailed since dies; the account is theirs to secure again."""
    with engine.begin() as connection:
        connection.execute(
            sa.update(accounts).where(accounts.c.id == account.id).values(email=previous)
        )
        _end_links(connection, account)
        connection.execute(sa.delete(sessions).where(sessions.c.account_id == account.id))
        _audit(connection, "email_change_cancelled", account, detail=previous)


def _audit(
    connection: sa.Connection, event: str, account: Account | None, detail: str | None = None
) -> None:
    connection.execute(
        sa.insert(audit).values(
            at=now(),
            event=event,
            login=account.login if account else None,
            account_id=account.id if account else None,
            detail=detail,
        )
    )
