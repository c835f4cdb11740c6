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
from kb.errors import KbError
from kb.helpdesk import accounts, throttle
from kb.helpdesk.accounts import Account, AccountError, now
from kb.tables import audit, sessions

SESSION_DAYS = 14
# Five tries per login, then each failure doubles the wait (2 s, 4 s, 8 s… up to 5 minutes);
# an address gets more (a school's staff share one), forgotten after an hour without a try.
LOGIN_RULE = throttle.Rule(free=5, window=dt.timedelta(hours=1), backoff=True)
ADDRESS_RULE = throttle.Rule(free=20, window=dt.timedelta(hours=1), backoff=True)
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
    if value and hmac.compare_digest(sign(value, key).encode(), signed.encode("utf-8", "replace")):
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


class NotYetActivated(LoginRefused):
    """Refused with the same words as a wrong password; the web sends the activation hint by
    e-mail, so that nobody learns at the login form which accounts exist."""

    def __init__(self, account: Account) -> None:
        super().__init__(WRONG_CREDENTIALS)
        self.account = account


def _refuse_throttled(engine: Engine, login: str, address: str, seconds: int) -> TooManyAttempts:
    record(engine, "login_throttled", login=login, address=address)
    return TooManyAttempts(seconds)


def log_in(engine: Engine, raw_login: str, password: str, address: str) -> Account:
    """The account, or a French reason; the UAI's shape is checked before any password.

    The attempt is counted (per address, then per login) before the password is checked, so
    parallel guesses are throttled like successive ones. Unknown, disabled and not-activated
    accounts get the same answer after the same work as a wrong password.
    """
    login = accounts.normalize_login(raw_login)  # AccountError: says what a UAI looks like
    at = now()
    by_address = throttle.take(engine, f"address:{address}", ADDRESS_RULE, at)
    if isinstance(by_address, throttle.Limited):
        raise _refuse_throttled(engine, login, address, by_address.seconds)
    by_login = throttle.take(engine, f"login:{login}", LOGIN_RULE, at)
    if isinstance(by_login, throttle.Limited):
        throttle.release(engine, by_address)  # refused before any check: it tried nothing
        raise _refuse_throttled(engine, login, address, by_login.seconds)
    account = accounts.by_login(engine, login)
    usable = account is not None and not account.disabled and account.activated
    if not accounts.verify_password(engine, account if usable else None, password) or not usable:
        record(engine, "login_failure", login=login, address=address)
        if account is not None and not account.disabled and not account.activated:
            raise NotYetActivated(account)
        raise LoginRefused(WRONG_CREDENTIALS)
    assert account is not None
    # The account's own count starts again; the address keeps its other failures, whoever
    # they tried: one good password does not buy a sprayer a fresh allowance.
    throttle.clear(engine, by_login.key)
    throttle.release(engine, by_address)
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


def check_password(engine: Engine, account: Account, password: str, address: str) -> None:
    """The current password, asked again before a change that could take the account: a
    borrowed session guessing it is throttled like a login."""
    reservation = throttle.take(engine, f"login:{account.login}", LOGIN_RULE, now())
    if isinstance(reservation, throttle.Limited):
        raise _refuse_throttled(engine, account.login, address, reservation.seconds)
    if not accounts.verify_password(engine, account, password):
        record(engine, "password_check_failure", account=account, address=address)
        raise AccountError("Le mot de passe actuel est incorrect.")
    throttle.clear(engine, reservation.key)


def change_password(
    engine: Engine, account: Account, current: str, new: str, keep_session: str | None,
    address: str,
) -> None:  # fmt: skip
    """Current password required; every other session of the account is then logged out."""
    check_password(engine, account, current, address)
    accounts.set_password(engine, account, new)
    close_other_sessions(engine, account, keep_session)
