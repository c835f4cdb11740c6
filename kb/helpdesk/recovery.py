"""Mails asked for from outside (forgotten password, activation hint): limited per account and
per address, and answered the same way whether or not anything was sent."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Engine

from kb.config import Settings
from kb.helpdesk import accounts, notifications, throttle
from kb.helpdesk.accounts import Account, now
from kb.helpdesk.auth import record

# Three mails an hour to one account: enough to retry after a typo or a spam folder, too few
# to bomb anyone's mailbox; an address asking for many accounts is a robot.
ACCOUNT_RULE = throttle.Rule(free=3, window=dt.timedelta(hours=1))
ADDRESS_RULE = throttle.Rule(free=10, window=dt.timedelta(hours=1))


def _allowed(engine: Engine, account_key: str | None, address: str) -> bool:
    at = now()
    by_address = throttle.take(engine, f"mail-address:{address}", ADDRESS_RULE, at)
    if isinstance(by_address, throttle.Limited):
        return False
    if account_key is None:
        return True
    by_account = throttle.take(engine, account_key, ACCOUNT_RULE, at)
    if isinstance(by_account, throttle.Limited):
        throttle.release(engine, by_address)
        return False
    return True


def request_reset(engine: Engine, settings: Settings, login: str, address: str) -> None:
    """'Mot de passe oublié ?' for a well-formed login: a link when the account can use one
    and the limits allow it; the person asking is told the same thing in every case."""
    account = accounts.by_login(engine, login)
    usable = account is not None and not account.disabled
    if not _allowed(engine, f"mail:{account.id}" if usable and account else None, address):
        record(engine, "reset_limited", login=login, address=address)
        return
    record(engine, "reset_requested", login=login, address=address)
    if usable and account is not None:
        with engine.begin() as connection:  # queued: sent by the background sender
            notifications.queue_reset(connection, settings, account)


def activation_hint(engine: Engine, settings: Settings, account: Account, address: str) -> None:
    """A login attempt on an account not yet activated: its owner gets a fresh activation
    link by e-mail (the page said only 'wrong credentials')."""
    if not _allowed(engine, f"mail:{account.id}", address):
        record(engine, "activation_limited", account=account, address=address)
        return
    record(engine, "activation_hint", account=account, address=address)
    with engine.begin() as connection:
        notifications.queue_activation(connection, settings, account)
