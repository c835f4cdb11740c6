"""The help desk's commands: accounts (add, import, list, disable, invite) and the mail queue."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys

from sqlalchemy.engine import Engine

from kb.cli.operations import database
from kb.clock import short
from kb.config import Settings


def cmd_accounts(args: argparse.Namespace, settings: Settings) -> int:
    with database(settings) as engine:
        return _accounts(args, settings, engine)


def _accounts(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    from kb.helpdesk import accounts, notifications, provisioning

    def invite(account: accounts.Account) -> None:
        with engine.begin() as connection:
            notifications.queue_activation(connection, settings, account)
        _deliver_now(engine, settings, f"E-mail d'activation envoyé à {account.email}.")

    action = args.accounts_command
    if action in ("add", "add-agent"):
        role = (
            "etablissement" if action == "add"
            else "editeur" if args.editeur else "admin" if args.admin else "agent"
        )  # fmt: skip
        account, outcome = accounts.save(
            engine,
            role=role,
            login=args.uai if action == "add" else args.email,
            establishment=args.etablissement if action == "add" else "",
            first_name=args.prenom,
            last_name=args.nom,
            email=args.email,
        )
        print(f"Compte {outcome} : {provisioning.describe(account)}")
        if not account.activated:
            invite(account)
        return 0
    if action == "import":
        report = provisioning.import_csv(engine, settings, args.file)
        for problem in report.problems:
            print(problem, file=sys.stderr)
        print(report.summary())
        if report.counts["créé"]:
            _deliver_now(engine, settings, "E-mails d'activation envoyés.")
        return 1 if report.problems else 0
    if action == "list":
        found = accounts.all_accounts(engine)
        if args.json:
            print(json.dumps([vars(a) for a in found], ensure_ascii=False, indent=2))
        else:
            for listed in found:
                print(provisioning.describe(listed))
            print(f"{len(found)} compte(s).")
        return 0
    named = accounts.by_login(engine, accounts.normalize_login(args.login))
    if named is None:
        print(f"kb: aucun compte « {args.login} ».", file=sys.stderr)
        return 1
    if action == "disable":
        accounts.disable(engine, named.login)
        print(f"Compte désactivé, sessions fermées : {named.login}")
        return 0
    if named.disabled:
        print(f"kb: le compte {named.login} est désactivé.", file=sys.stderr)
        return 1
    invite(named)
    return 0


def _deliver_now(engine: Engine, settings: Settings, sent: str) -> None:
    """The CLI sends what it queued at once; what cannot leave now waits for the servers."""
    from kb.helpdesk.mail import Mailer
    from kb.helpdesk.outbox import Sender

    done = Sender(engine, Mailer(settings), settings, f"cli-{os.getpid()}").deliver()
    if done.retried or done.abandoned:
        print(
            f"kb: {done.retried + done.abandoned} e-mail(s) pas encore envoyé(s) : ils restent "
            "en file d'attente (kb mail queue) et partiront avec le serveur.",
            file=sys.stderr,
        )
    else:
        print(sent)


def cmd_mail(args: argparse.Namespace, settings: Settings) -> int:
    from kb.helpdesk import outbox
    from kb.helpdesk.mail import Mailer

    with database(settings) as engine:
        if args.mail_command == "send":
            done = outbox.Sender(engine, Mailer(settings), settings, f"cli-{os.getpid()}").deliver(
                passes=1_000
            )
            print(
                f"{done.sent} envoyé(s), {done.retried} à réessayer, {done.abandoned} abandonné(s)."
            )
            return 1 if done.retried or done.abandoned else 0
        queued = outbox.waiting(engine)
    if args.json:
        print(json.dumps([_mail_json(q) for q in queued], ensure_ascii=False, indent=2))
        return 0
    for q in queued:
        when = q.abandoned_at or q.next_attempt_at
        print(
            f"#{q.id:<6} {q.state:<19} {short(q.created_at)}  "
            f"{q.attempts} essai(s)  {q.recipient} — {q.subject}"
        )
        if q.last_error:
            label = "abandonné le" if q.abandoned_at else "prochain essai"
            print(f"        {q.last_error} ({label} {short(when) if when else '-'})")
    waiting = sum(1 for q in queued if not q.abandoned_at)
    abandoned = len(queued) - waiting
    print(
        f"{waiting} e-mail(s) en attente, {abandoned} abandonné(s) ces "
        f"{outbox.SHOWN_DAYS} derniers jours."
    )
    return 0


def _mail_json(q: object) -> dict[str, object]:
    values = dataclasses.asdict(q)  # type: ignore[call-overload]
    values["state"] = q.state  # type: ignore[attr-defined]
    return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in values.items()}
