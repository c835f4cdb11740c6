"""The `kb` command line: its commands and options, with usage errors in French."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import NoReturn


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
