"""The operators' commands on the database and the data dir: db upgrade, backup, restore."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator

from sqlalchemy.engine import Engine

from kb.config import Settings


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[Engine]:
    """The database, migrated; its connections closed when the command ends."""
    from kb import db

    engine = db.make_engine(settings)
    try:
        db.upgrade(engine)
        yield engine
    finally:
        engine.dispose()


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from kb import db

    with database(settings) as engine:
        print(f"Base à jour (révision {db.current_revision(engine)}) : {_safe_url(settings)}")
    return 0


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database).render_as_string(hide_password=True)


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from importlib.metadata import version

    from kb import backup

    report = backup.backup(settings, args.destination, kb_version=version("kb"))
    for note in report.notes:
        print(f"kb: attention : {note}", file=sys.stderr)
    print(f"Sauvegarde écrite dans {args.destination} : {report.summary()}.")
    return 1 if report.notes else 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from kb import backup

    report = backup.restore(settings, args.source, force=args.force)
    for note in report.notes:
        print(f"kb: {note}", file=sys.stderr)
    print(f"Sauvegarde restaurée depuis {args.source} : {report.summary()}.")
    print("Démarrez kb serve : il applique les migrations si la sauvegarde est plus ancienne.")
    return 0
