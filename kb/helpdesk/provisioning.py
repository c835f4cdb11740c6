"""Accounts from the command line: one at a time, or a CSV file of establishments."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from kb.config import Settings
from kb.helpdesk import accounts, notifications
from kb.helpdesk.accounts import Account, AccountError

COLUMNS = {
    "uai": "uai",
    "code uai": "uai",
    "etablissement": "establishment",
    "nom de l'etablissement": "establishment",
    "prenom": "first_name",
    "nom": "last_name",
    "email": "email",
    "e-mail": "email",
    "courriel": "email",
    "adresse e-mail": "email",
}
REQUIRED = ("uai", "establishment", "first_name", "last_name", "email")


@dataclass
class ImportReport:
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        c = self.counts
        return (
            f"{c['créé']} compte(s) créé(s), {c['modifié']} modifié(s), "
            f"{c['inchangé']} inchangé(s), {len(self.problems)} ligne(s) en erreur."
        )


def _header_key(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name.strip().lower()).encode("ascii", "ignore")
    return folded.decode().replace("’", "'")


def _read(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252")  # what a French spreadsheet saves as "CSV"


def import_csv(
    engine: Engine, settings: Settings, path: Path, *, send: bool = True
) -> ImportReport:
    """Create or update each row's account; report bad rows as file:line and go on."""
    report = ImportReport()
    try:
        text = _read(path)
    except OSError as exc:
        report.problems.append(f"{path}:1: fichier illisible : {exc.strerror or exc}")
        return report
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text.split("\n", 1)[0], delimiters=",;\t"
        )
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, None)
    if header is None:
        report.problems.append(f"{path}:1: fichier vide")
        return report
    columns = [COLUMNS.get(_header_key(h)) for h in header]
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        report.problems.append(
            f"{path}:1: colonnes attendues : uai, etablissement, prenom, nom, email "
            f"(manquantes : {', '.join(missing)})"
        )
        return report
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        values = {
            column: cell.strip() for column, cell in zip(columns, row, strict=False) if column
        }
        try:
            uai = accounts.normalize_uai(values.get("uai", ""))
            if uai in seen:
                raise AccountError(f"code UAI {uai} déjà présent ligne {seen[uai]}")
            account, outcome = accounts.save(
                engine,
                role="etablissement",
                login=uai,
                establishment=values.get("establishment", ""),
                first_name=values.get("first_name", ""),
                last_name=values.get("last_name", ""),
                email=values.get("email", ""),
            )
        except AccountError as exc:
            report.problems.append(f"{path}:{line}: {exc.message}")
            continue
        seen[uai] = line
        report.counts[outcome] += 1
        if outcome == "créé" and send:
            with engine.begin() as connection:
                notifications.queue_activation(connection, settings, account)
    return report


def describe(account: Account) -> str:
    state = "désactivé" if account.disabled else "actif" if account.activated else "à activer"
    return (
        f"{account.login:<28} {accounts.ROLE_LABELS[account.role]:<13} {state:<10} "
        f"{account.name} <{account.email}>"
        + (f" — {account.establishment}" if account.establishment else "")
    )
