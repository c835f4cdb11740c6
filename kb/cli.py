"""The `kb` command: the same domain functions as the web layer, for editors and operators."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import html
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from sqlalchemy.engine import Engine

from kb.config import Settings
from kb.errors import KbError
from kb.knowledge.build import BuildReport, ContentErrors, build, check
from kb.knowledge.problems import display
from kb.knowledge.search import SearchIndex


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors in French and exit status 2."""

    def error(self, message: str) -> NoReturn:
        translations = {
            "the following arguments are required": "arguments obligatoires manquants",
            "unrecognized arguments": "arguments inconnus",
            "invalid choice": "choix invalide",
            "expected one argument": "une valeur est attendue",
            "invalid int value": "nombre entier attendu",
        }
        for english, french in translations.items():
            message = message.replace(english, french)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: erreur : {message}\n")


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"nombre entier attendu, pas « {value} »") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"nombre positif attendu, pas {number}")
    return number


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"date AAAA-MM-JJ attendue, pas « {value} »") from None


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--content", type=Path, help="dossier du contenu (KB_CONTENT_DIR)")
    parser.add_argument("--index", type=Path, help="dossier de l'index (KB_INDEX_DIR)")


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kb", description="Centre d'assistance kb.")
    commands = parser.add_subparsers(dest="command", metavar="COMMANDE", parser_class=_Parser)
    commands.required = True

    p = commands.add_parser("build", help="vérifie le contenu et construit l'index")
    _common(p)
    p.add_argument("--full", action="store_true", help="tout reconstruire")
    p.add_argument("--strict", action="store_true", help="les avertissements font échouer")

    p = commands.add_parser("check", help="vérifie le contenu sans rien écrire")
    _common(p)
    p.add_argument("--strict", action="store_true", help="les avertissements font échouer")

    p = commands.add_parser("search", help="cherche comme le site")
    _common(p)
    p.add_argument("query", help="la recherche, entre guillemets")
    p.add_argument("--category", help="limiter à une catégorie (son slug)")
    p.add_argument("--limit", type=_positive, default=10, help="nombre de résultats (10)")
    p.add_argument("--json", action="store_true", help="résultats en JSON")

    p = commands.add_parser("new", help="crée un article (brouillon) à partir de son titre")
    _common(p)
    p.add_argument("title", help="le titre, entre guillemets")
    p.add_argument("--category", required=True, help="slug de la catégorie, par exemple abonnement")
    p.add_argument("--slug", help="l'adresse de l'article (sinon tirée du titre)")

    p = commands.add_parser(
        "mv", help="renomme ou déplace un article ; son ancienne adresse reste valable"
    )
    _common(p)
    p.add_argument("article", help="le fichier .md de l'article, ou son slug")
    p.add_argument(
        "destination",
        help="« catégorie/nom.md », une catégorie (même nom) ou un nouveau nom (même catégorie)",
    )

    p = commands.add_parser("stats", help="le rapport des éditeurs")
    _common(p)
    p.add_argument("--since", type=_date, help="depuis le AAAA-MM-JJ (30 jours par défaut)")
    p.add_argument("--until", type=_date, help="jusqu'au AAAA-MM-JJ (aujourd'hui)")
    p.add_argument("--json", action="store_true")

    p = commands.add_parser("serve", help="sert le centre d'assistance (uvicorn)")
    _common(p)
    p.add_argument("--host", help="adresse d'écoute (127.0.0.1)")
    p.add_argument("--port", type=_positive, help="port (8000)")
    p.add_argument("--workers", type=_positive, help="nombre de processus (1)")
    p.add_argument("--reload", action="store_true", help="recharger à chaque modification")

    p = commands.add_parser("accounts", help="comptes : établissements, support, éditeurs")
    actions = p.add_subparsers(dest="accounts_command", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    add = actions.add_parser("add", help="crée un compte d'établissement et envoie l'activation")
    add.add_argument("uai", help="code UAI de l'établissement, par exemple 0750654D")
    add.add_argument("--etablissement", required=True, help="nom de l'établissement")
    add.add_argument("--prenom", required=True, help="prénom du contact")
    add.add_argument("--nom", required=True, help="nom du contact")
    add.add_argument("--email", required=True, help="adresse e-mail du contact")
    agent = actions.add_parser("add-agent", help="crée un compte du support (ou d'éditeur)")
    agent.add_argument("email", help="adresse e-mail, qui sert d'identifiant")
    agent.add_argument("--prenom", required=True)
    agent.add_argument("--nom", required=True)
    agent.add_argument("--editeur", action="store_true", help="rôle éditeur plutôt que support")
    agent.add_argument(
        "--admin", action="store_true", help="administrateur : support, et gestion des comptes"
    )
    imported = actions.add_parser("import", help="importe un CSV d'établissements")
    imported.add_argument(
        "file", type=Path, help="colonnes : uai, etablissement, prenom, nom, email"
    )
    listed = actions.add_parser("list", help="liste les comptes")
    listed.add_argument("--json", action="store_true")
    disabled = actions.add_parser("disable", help="désactive un compte et ferme ses sessions")
    disabled.add_argument("login", help="code UAI ou adresse e-mail")
    invite = actions.add_parser("invite", help="renvoie l'e-mail d'activation")
    invite.add_argument("login", help="code UAI ou adresse e-mail")

    p = commands.add_parser("lmtp", help="reçoit les réponses aux e-mails des tickets (LMTP)")
    p.add_argument(
        "--listen", default="127.0.0.1:8025", metavar="HÔTE:PORT",
        help="où le serveur de messagerie livre en LMTP (défaut 127.0.0.1:8025)",
    )  # fmt: skip
    _common(p)
    p = commands.add_parser("backup", help="sauvegarde la base, les fichiers et le contenu")
    _common(p)
    p.add_argument("destination", type=Path, help="dossier à créer (absent ou vide)")

    p = commands.add_parser("restore", help="restaure une sauvegarde de kb backup")
    _common(p)
    p.add_argument("source", type=Path, help="dossier écrit par kb backup")
    p.add_argument(
        "--force", action="store_true", help="remplacer la base et les fichiers en place"
    )

    p = commands.add_parser("db", help="base de données")
    db_commands = p.add_subparsers(dest="db_command", metavar="ACTION", parser_class=_Parser)
    db_commands.required = True
    upgrade = db_commands.add_parser("upgrade", help="applique les migrations")
    _common(upgrade)

    p = commands.add_parser("mail", help="e-mails en file d'attente")
    mail_commands = p.add_subparsers(dest="mail_command", metavar="ACTION", parser_class=_Parser)
    mail_commands.required = True
    listed_mail = mail_commands.add_parser("queue", help="ce qui attend d'être envoyé, et pourquoi")
    listed_mail.add_argument("--json", action="store_true", help="sortie JSON")
    mail_commands.add_parser("send", help="envoie maintenant ce qui est dû")
    return parser


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
        _print_problems(exc.problems, sys.stderr)
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


def _print_problems(problems: Sequence[object], stream: TextIO) -> None:
    for problem in problems:
        print(problem, file=stream)


def cmd_build(args: argparse.Namespace, settings: Settings) -> int:
    report = run_build(settings, full=args.full)
    if report.warnings:
        print(f"{len(report.warnings)} avertissement(s) :", file=sys.stderr)
        _print_problems(report.warnings, sys.stderr)
    print(f"Index construit : {report.summary()}")
    return 1 if args.strict and report.warnings else 0


def run_build(settings: Settings, full: bool = False) -> BuildReport:
    """Build with a progress line on a terminal when there is much to do."""
    interactive = sys.stderr.isatty()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if total >= 200 and (now - last[0] > 0.5 or done == total):
            last[0] = now
            end = "\n" if done == total else ("\r" if interactive else "\n")
            print(f"  {done}/{total} articles indexés", end=end, file=sys.stderr, flush=True)

    return build(settings.content_dir, settings.index_dir, full=full, progress=progress)


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    content, problems = check(settings.content_dir)
    errors = [p for p in problems if not p.warning]
    warnings = [p for p in problems if p.warning]
    _print_problems(errors, sys.stdout)
    if warnings:
        print(f"{len(warnings)} avertissement(s) :")
        _print_problems(warnings, sys.stdout)
    counted = f"{len(content.articles)} articles, {len(content.categories)} catégories"
    if errors:
        also = f" et {len(warnings)} avertissement(s)" if warnings else ""
        print(f"Échec : {len(errors)} erreur(s){also} ({counted}).")
        return 1
    if args.strict and warnings:
        print(f"Échec (--strict) : {len(warnings)} avertissement(s), aucune erreur ({counted}).")
        return 1
    print(f"Contenu valide : {counted}.")
    return 0


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    snapshot = SearchIndex(settings.index_dir).snapshot()
    results = snapshot.search(args.query, category=args.category, per_page=min(args.limit, 50))
    if args.json:
        print(json.dumps(results.as_json(), ensure_ascii=False, indent=2))
        return 0
    if results.empty_query:
        print("Saisissez un ou plusieurs mots à chercher.")
        return 0
    if results.suggestion:
        print(f"Essayez avec : {results.suggestion}")
    if not results.hits:
        print(f"Aucun article ne correspond à « {results.query} ».")
        return 0
    print(f"{results.total} résultat(s) pour « {results.query} »")
    for rank, hit in enumerate(results.hits, 1):
        snippet = hit.snippet.replace("<mark>", "[").replace("</mark>", "]")
        print(f"{rank:>2}. {hit.title}  ({hit.category}, {hit.score:.2f})  {hit.url}")
        print(f"    {html.unescape(snippet)}")
    return 0


@contextlib.contextmanager
def _database(settings: Settings) -> Iterator[Engine]:
    """The database, migrated; its connections closed when the command ends."""
    from kb import db

    engine = db.make_engine(settings)
    try:
        db.upgrade(engine)
        yield engine
    finally:
        engine.dispose()


def cmd_accounts(args: argparse.Namespace, settings: Settings) -> int:
    with _database(settings) as engine:
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

    with _database(settings) as engine:
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
            f"#{q.id:<6} {q.state:<19} {_when(q.created_at)}  "
            f"{q.attempts} essai(s)  {q.recipient} — {q.subject}"
        )
        if q.last_error:
            label = "abandonné le" if q.abandoned_at else "prochain essai"
            print(f"        {q.last_error} ({label} {_when(when) if when else '-'})")
    waiting = sum(1 for q in queued if not q.abandoned_at)
    abandoned = len(queued) - waiting
    print(
        f"{waiting} e-mail(s) en attente, {abandoned} abandonné(s) ces "
        f"{outbox.SHOWN_DAYS} derniers jours."
    )
    return 0


def _when(moment: dt.datetime) -> str:
    """'03/12/2026 14:05', Paris time, as support reads it."""
    from kb.clock import PARIS

    return moment.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")


def _mail_json(q: object) -> dict[str, object]:
    values = dataclasses.asdict(q)  # type: ignore[call-overload]
    values["state"] = q.state  # type: ignore[attr-defined]
    return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in values.items()}


def cmd_new(args: argparse.Namespace, settings: Settings) -> int:
    from kb.clock import today
    from kb.knowledge.authoring import new_article

    path = new_article(settings.content_dir, args.title, args.category, today(), slug=args.slug)
    print(f"Article créé (brouillon) : {path}")
    print("Complétez-le, retirez « draft: true » pour le publier, puis lancez kb check.")
    return 0


def cmd_mv(args: argparse.Namespace, settings: Settings) -> int:
    from kb.knowledge.moving import move_article

    move = move_article(settings.content_dir, args.article, args.destination)
    print(f"Article déplacé : {display(move.old_path)} -> {display(move.new_path)}")
    if move.new_slug != move.old_slug:
        print(
            f"Nouvelle adresse « {move.new_slug} » ; « {move.old_slug} » reste dans « aliases » "
            "et y redirige."
        )
    for path in move.rewritten:
        print(f"  liens mis à jour : {display(path)}")
    print("Lancez kb check, puis enregistrez (commit) ces fichiers ensemble.")
    return 0


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    from kb.clock import today
    from kb.insights import report, report_text

    until = args.until or today()
    since = args.since or until - dt.timedelta(days=29)
    snapshot = SearchIndex(settings.index_dir).snapshot()
    categories = {c["slug"]: c["title"] for c in snapshot.categories}
    with _database(settings) as engine:
        built = report.build(
            engine, snapshot.listing, categories, since, until, aliases=snapshot.aliases
        )
    if args.json:
        print(json.dumps(built.as_json(), ensure_ascii=False, indent=2, default=str))
        return 0
    print(report_text.as_text(built))
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from kb import db

    with _database(settings) as engine:
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


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Migrate, then run uvicorn; each serving process builds a missing or stale index in the
    background (the preview, `--reload`, builds first and stops on content errors)."""
    import logging.config
    import shutil
    import tempfile

    import uvicorn

    from kb import logs
    from kb.knowledge.build import is_stale
    from kb.knowledge.search.indexer import current_generation
    from kb.web.listening import run_workers

    # JSON lines on stdout for operators; readable lines for the editors' preview.
    log_config = logs.config(json_lines=not args.reload)
    if args.reload:  # the preview's terminal is the editor's: content problems, not every request
        log_config["loggers"]["kb.request"] = {"level": "WARNING"}
    logging.config.dictConfig(log_config)
    log = logging.getLogger("kb.serve")
    with _database(settings):
        pass  # migrated (or refused: a newer schema) before building or starting workers
    if is_stale(settings.content_dir, settings.index_dir):
        # Several workers and no index at all: built once here first, or some workers would
        # answer 503 while another, already built, says the replica is ready.
        first = settings.workers > 1 and current_generation(settings.index_dir) is None
        if args.reload or first:
            log.info("Index absent ou plus ancien que le contenu : construction…")
            report = run_build(settings)
            log.info("Index construit : %s", report.summary())
        else:
            log.info(
                "Index absent ou plus ancien que le contenu : construction en arrière-plan "
                "(la version précédente reste servie ; sans index, /readyz répond 503 "
                "jusqu'à la fin de la construction)."
            )
    if args.reload:  # the editor's preview: drafts shown, pages follow every change
        settings = dataclasses.replace(settings, live_reload=True, show_drafts=True)
    # Workers and the reloader import the app anew: they read the settings from KB_*.
    os.environ.update(settings.as_env())
    # Each worker writes its metrics to files there; /metrics sums them. A fresh folder per
    # start: counts of a previous run (or of a dead worker's gauges) never leak in.
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    own_metrics_dir = not metrics_dir
    if own_metrics_dir:
        metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
            prefix="kb-metrics-"
        )
    log.info("Centre d'assistance : http://%s:%s/", settings.host, settings.port)
    app = "kb.web.app:create_app_from_env"
    options: dict[str, Any] = {
        "factory": True,
        # The client's address (login throttling, the audit) and HTTPS come from these
        # proxies' X-Forwarded-For and X-Forwarded-Proto, and from nobody else's.
        "proxy_headers": True,
        "forwarded_allow_ips": settings.trusted_proxies,
        "server_header": False,
        "log_config": log_config,
        # kb's request line replaces it: a route's template and status, never a token.
        "access_log": False,
        # A stop (SIGTERM) waits this long for requests in flight, uploads included, then
        # cuts them: a resumable upload goes on from its last byte on another replica.
        "timeout_graceful_shutdown": settings.shutdown_seconds,
    }
    try:
        if settings.workers > 1 and not args.reload:
            # Each worker on its own socket: connections shared evenly (kb/web/listening.py).
            host, port = settings.host, settings.port
            run_workers(app, host=host, port=port, workers=settings.workers, **options)
        else:
            uvicorn.run(
                app,
                host=settings.host,
                port=settings.port,
                reload=args.reload,
                # Python code restarts the server; content and templates are the app's own watch.
                reload_dirs=[str(Path(__file__).parent)] if args.reload else None,
                **options,
            )
    finally:
        if own_metrics_dir and metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def cmd_lmtp(args: argparse.Namespace, settings: Settings) -> int:
    """Answers to ticket mails, delivered by the MTA over LMTP, until interrupted."""
    import signal
    import threading

    from kb.helpdesk import auth as auth_domain
    from kb.helpdesk.attachments import Store
    from kb.helpdesk.lmtp import Receiver
    from kb.web.app import create_app

    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise KbError(f"--listen {args.listen!r} : écrivez HÔTE:PORT, par exemple 127.0.0.1:8025")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with _database(settings) as engine:
        secret = auth_domain.secret_key(settings)
        # The mails it queues link to the web's pages by route name: the app's routes, unserved.
        app = create_app(settings, background=False)
        links = app.state.services.links
        app.state.services.engine.dispose()
        receiver = Receiver(
            settings, engine, Store(settings.data_dir), secret, links, host=host, port=int(port)
        )
        try:
            receiver.start()
        except (OSError, RuntimeError) as exc:
            raise KbError(f"écoute impossible sur {args.listen} : {exc}") from exc
        print(f"Réception LMTP sur {host}:{port} (Ctrl-C pour arrêter).", file=sys.stderr)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            receiver.stop()
    return 0


# Commands that open the database or write files under KB_DATA_DIR: it must take new files.
_USES_DATA_DIR = frozenset({"serve", "db", "accounts", "stats", "backup", "restore", "lmtp"})

_COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "build": cmd_build,
    "check": cmd_check,
    "search": cmd_search,
    "serve": cmd_serve,
    "db": cmd_db,
    "mail": cmd_mail,
    "accounts": cmd_accounts,
    "new": cmd_new,
    "mv": cmd_mv,
    "stats": cmd_stats,
    "lmtp": cmd_lmtp,
    "backup": cmd_backup,
    "restore": cmd_restore,
}


if __name__ == "__main__":
    sys.exit(main())
