"""The `kb` command: the same domain functions as the web layer, for editors and operators."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from kb.cli import editing, helpdesk, operations, serving
from kb.cli.parser import make_parser
from kb.config import Settings
from kb.errors import KbError
from kb.knowledge.build import ContentErrors


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        settings = Settings.from_env(
            content_dir=getattr(args, "content", None),
            index_dir=getattr(args, "index", None),
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            workers=getattr(args, "workers", None),
            writable_data_dir=args.command in _USES_DATA_DIR,
        )
        return _COMMANDS[args.command](args, settings)
    except ContentErrors as exc:
        editing.print_problems(exc.problems, sys.stderr)
        print(f"{len(exc.problems)} erreur(s) : rien n'a été construit.", file=sys.stderr)
        return 1
    except KbError as exc:
        for line in exc.message.splitlines():
            print(f"kb: {line}", file=sys.stderr)
        return 2 if exc.status == 400 else 1
    except KeyboardInterrupt:
        print("kb: interrompu", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `kb search … | head`: the reader has what it wanted. Python's own flush at exit
        # would fail again on the closed pipe, so stdout is pointed at nothing first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    except Exception as exc:
        if os.environ.get("KB_DEBUG"):
            raise
        from kb.logs import redact

        detail = redact(str(exc).splitlines()[0] if str(exc) else "")
        print(
            f"kb: erreur inattendue ({type(exc).__name__} : {detail}). "
            "Relancez avec KB_DEBUG=1 pour le détail.",
            file=sys.stderr,
        )
        return 1


# Commands that open the database or write files under KB_DATA_DIR: it must take new files.
_USES_DATA_DIR = frozenset({"serve", "db", "accounts", "stats", "backup", "restore", "lmtp"})

_COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "build": editing.cmd_build,
    "check": editing.cmd_check,
    "search": editing.cmd_search,
    "serve": serving.cmd_serve,
    "db": operations.cmd_db,
    "mail": helpdesk.cmd_mail,
    "accounts": helpdesk.cmd_accounts,
    "new": editing.cmd_new,
    "mv": editing.cmd_mv,
    "stats": editing.cmd_stats,
    "lmtp": serving.cmd_lmtp,
    "backup": operations.cmd_backup,
    "restore": operations.cmd_restore,
}
