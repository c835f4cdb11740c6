"""Logging in: throttled attempts, the audit trail, server-side sessions behind signed cookies."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import secrets
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kb.config import Settings
from kb.db import audit, sessions
from kb.errors import KbError
from kb.helpdesk import accounts
from kb.helpdesk.accounts import Account, AccountError, now

SESSION_DAYS = 14
FREE_FAILURES = 5  # then each failure doubles the wait: 2 s, 4 s, 8 s… up to MAX_WAIT
MAX_WAIT = dt.timedelta(minutes=5)
FAILURE_WINDOW = dt.timedelta(hours=1)
WRONG_CREDENTIALS = "Identifiant ou mot de passe incorrect."


class LoginRefused(KbError):
    status = 400
    code = "connexion_refusee"


class TooManyAttempts(KbError):
    status = 429
    code = "trop_de_tentatives"

    def __init__(self, seconds: int) -> None:
        super().__init__(
            f"Trop de tentatives de connexion. Réessayez dans {_duration(seconds)} : "
            "le délai s'allonge à chaque nouvel essai manqué."
        )
        self.seconds = seconds


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} seconde{'s' if seconds > 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes > 1 else ''}"


def secret_key(settings: Settings) -> bytes:
    """KB_SECRET_KEY, or a key created once in the data dir (replicas must share one)."""
    if settings.secret_key:
        return settings.secret_key.encode()
    path: Path = settings.data_dir / "secret_key"
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".secret_key.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(tmp, path)  # the first process to get there wins; others read its key
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text(encoding="utf-8").strip().encode()


def sign(value: str, key: bytes) -> str:
    mac = hmac.new(key, value.encode(), hashlib.sha256).digest()
    return f"{value}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def unsign(signed: str, key: bytes) -> str | None:
    value, _, _mac = signed.rpartition(".")
    if value and hmac.compare_digest(sign(value, key), signed):
        return value
    return None


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def record(
    engine: Engine,
    event: str,
    *,
    login: str | None = None,
    account: Account | None = None,
    address: str | None = None,
    detail: str | None = None,
) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.insert(audit).values(
                at=now(),
                event=event,
                login=login or (account.login if account else None),
                account_id=account.id if account else None,
                address=address,
                detail=detail,
            )
        )


def _wait_for(engine: Engine, column: sa.Column[str], value: str, at: dt.datetime) -> int:
    """Seconds to wait before the next attempt, from the failures since the last success."""
    with engine.connect() as connection:
        last_success = connection.execute(
            sa.select(sa.func.max(audit.c.at)).where(
                column == value, audit.c.event == "login_success"
            )
        ).scalar()
        since = at - FAILURE_WINDOW
        if last_success is not None:
            last_success = (
                last_success if last_success.tzinfo else last_success.replace(tzinfo=dt.UTC)
            )
            since = max(since, last_success)
        failures = connection.execute(
            sa.select(sa.func.count(), sa.func.max(audit.c.at)).where(
                column == value, audit.c.event == "login_failure", audit.c.at > since
            )
        ).one()
    count: int = failures[0]
    last: dt.datetime | None = failures[1]
    if count < FREE_FAILURES or last is None:
        return 0
    wait = min(dt.timedelta(seconds=2 ** (count - FREE_FAILURES + 1)), MAX_WAIT)
    remaining = (last + wait - at).total_seconds()
    return max(0, int(remaining + 0.999))


def log_in(engine: Engine, raw_login: str, password: str, address: str) -> Account:
    """The account, or a French reason; the UAI's shape is checked before any password."""
    login = accounts.normalize_login(raw_login)  # AccountError: says what a UAI looks like
    at = now()
    wait = max(
        _wait_for(engine, audit.c.login, login, at),
        _wait_for(engine, audit.c.address, address, at),
    )
    if wait:
        record(engine, "login_throttled", login=login, address=address)
        raise TooManyAttempts(wait)
    account = accounts.by_login(engine, login)
    if account is not None and account.disabled:
        account = None
    if account is not None and not account.activated:
        record(engine, "login_failure", login=login, address=address, detail="not activated")
        raise LoginRefused(
            "Ce compte n'est pas encore activé : suivez le lien de l'e-mail d'activation, "
            "ou demandez un nouveau lien avec « Mot de passe oublié ? »."
        )
    if not accounts.verify_password(engine, account, password) or account is None:
        record(engine, "login_failure", login=login, address=address)
        raise LoginRefused(WRONG_CREDENTIALS)
    record(engine, "login_success", account=account, address=address)
    return account


def open_session(engine: Engine, account: Account) -> str:
    """A new session id (rotated at every login): the cookie carries it, the database its hash."""
    raw = secrets.token_urlsafe(32)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(sessions).values(
                digest=_digest(raw),
                account_id=account.id,
                created_at=now(),
                expires_at=now() + dt.timedelta(days=SESSION_DAYS),
            )
        )
    return raw


def session_account(engine: Engine, raw: str) -> Account | None:
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(sessions.c.account_id, sessions.c.expires_at).where(
                sessions.c.digest == _digest(raw)
            )
        ).first()
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=dt.UTC)
    if expires <= now():
        return None
    account = accounts.get(engine, row.account_id)
    return account if account is not None and not account.disabled else None


def close_session(engine: Engine, raw: str) -> None:
    with engine.begin() as connection:
        connection.execute(sa.delete(sessions).where(sessions.c.digest == _digest(raw)))


def close_other_sessions(engine: Engine, account: Account, keep: str | None) -> int:
    with engine.begin() as connection:
        statement = sa.delete(sessions).where(sessions.c.account_id == account.id)
        if keep:
            statement = statement.where(sessions.c.digest != _digest(keep))
        return int(connection.execute(statement).rowcount or 0)


def change_password(
    engine: Engine, account: Account, current: str, new: str, keep_session: str | None
) -> None:
    """Current password required; every other session of the account is then logged out."""
    if not accounts.verify_password(engine, account, current):
        raise AccountError("Le mot de passe actuel est incorrect.")
    accounts.set_password(engine, account, new)
    close_other_sessions(engine, account, keep_session)
