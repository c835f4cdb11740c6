"""Backups: the database, the data dir's files and the content, with a manifest of hashes.

The database is copied first (SQLite's online backup API, or pg_dump's snapshot), then the files:
every attachment a copied row names was on disk before its row was committed, so the copy always
finds it, even while replicas keep serving. Attachments that no copied row names (a ticket still
being created) are left out: a restore never holds a file that nothing points to.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from kb import db
from kb.config import Settings
from kb.errors import KbError
from kb.tables import attachments

MANIFEST = "manifest.json"
FORMAT = 1
SQLITE_FILE = "database.sqlite3"
POSTGRES_FILE = "database.pgdump"
# In the data dir, what is not copied: the database itself (copied apart), and what belongs
# to a running process (files being received, notes of moves not yet committed).
SKIPPED = ("kb.sqlite3", "kb.sqlite3-wal", "kb.sqlite3-shm", "kb.sqlite3-journal")
SKIPPED_DIRS = ("attachments/tmp", "journal")
CHUNK = 1024 * 1024


class BackupError(KbError):
    code = "sauvegarde"


@dataclass
class Report:
    """What a backup or a restore did, in French."""

    database: str
    files: int = 0
    bytes: int = 0
    content: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"base {self.database}, {self.files} fichier(s) de données "
            f"({self.bytes} octets), {self.content} fichier(s) de contenu"
        )


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _kind(settings: Settings) -> str:
    return "sqlite" if db.database_url(settings).startswith("sqlite") else "postgresql"


# --- backup -----------------------------------------------------------------------------------


def backup(settings: Settings, destination: Path, *, kb_version: str) -> Report:
    """Write a complete backup into `destination`, a folder that must not exist or be empty."""
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise BackupError(
            f"{destination} existe déjà et n'est pas vide : choisissez un autre dossier."
        )
    destination.mkdir(parents=True, exist_ok=True)
    kind = _kind(settings)
    engine = db.make_engine(settings)
    try:
        revision = db.current_revision(engine)
        if kind == "sqlite":
            database_file = destination / SQLITE_FILE
            _sqlite_backup(_sqlite_path(settings), database_file)
            attached = _attachments(sa.create_engine(f"sqlite:///{database_file}"))
        else:
            database_file = destination / POSTGRES_FILE
            attached = _pg_dump(settings, engine, database_file)
    finally:
        engine.dispose()
    report = Report(database=kind)
    files = []
    for relative, source in _data_files(settings.data_dir, attached):
        target = destination / "data" / relative
        files.append(_copy(source, target, relative))
        report.files += 1
        report.bytes += files[-1]["size"]
    content = []
    if settings.content_dir.is_dir():
        for source in sorted(p for p in settings.content_dir.rglob("*") if p.is_file()):
            relative = source.relative_to(settings.content_dir).as_posix()
            content.append(_copy(source, destination / "content" / relative, relative))
            report.content += 1
    missing = sorted(set(attached) - {f["path"].removeprefix("attachments/") for f in files})
    for stored_as in missing:
        report.notes.append(f"pièce jointe absente du dossier de données : attachments/{stored_as}")
    manifest = {
        "format": FORMAT,
        "kb_version": kb_version,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "database": {
            "kind": kind,
            "file": database_file.name,
            "size": database_file.stat().st_size,
            "sha256": sha256(database_file),
            "revision": revision,
        },
        "data": files,
        "content": content,
    }
    _write_json(destination / MANIFEST, manifest)
    return report


def _sqlite_path(settings: Settings) -> Path:
    database = make_url(db.database_url(settings)).database
    if not database or database == ":memory:":
        raise BackupError("La base SQLite n'est pas un fichier : rien à sauvegarder.")
    return Path(database)


def _sqlite_backup(source: Path, target: Path) -> None:
    """SQLite's online backup: one consistent picture, while others keep writing."""
    if not source.exists():
        raise BackupError(f"Base SQLite introuvable : {source}")
    with contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src:
        src.execute("PRAGMA busy_timeout=10000")
        with contextlib.closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
            ok = dst.execute("PRAGMA integrity_check").fetchone()[0]
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    if ok != "ok":
        raise BackupError(f"La copie de la base est endommagée : {ok}")


def _libpq(settings: Settings) -> tuple[str, dict[str, str]]:
    """The database as pg_dump and pg_restore take it: the password in the environment only."""
    url = make_url(db.database_url(settings))
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    if shutil.which(command[0]) is None:
        raise BackupError(
            f"{command[0]} introuvable : installez le client PostgreSQL de la même version "
            "que le serveur (paquet postgresql-client)."
        )
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()
        raise BackupError(f"{what} a échoué : {detail[-1] if detail else result.returncode}")


def _pg_dump(settings: Settings, engine: sa.Engine, target: Path) -> dict[str, str]:
    """pg_dump of one snapshot, and the attachment rows of that same snapshot."""
    url, env = _libpq(settings)
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            # pg_dump reads the database as this transaction sees it, and so does the query
            # below: the files copied are exactly those the dump's rows name.
            snapshot: str = connection.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
            command = ["pg_dump", "--format=custom", "--no-owner", "--no-privileges"]
            command += ["--snapshot", str(snapshot), "--file", str(target), "--dbname", url]
            _run(command, env, "pg_dump")
            table = attachments
            rows = connection.execute(sa.select(table.c.stored_as, table.c.sha256))
            return {str(stored_as): str(digest) for stored_as, digest in rows}


def _attachments(engine: sa.Engine) -> dict[str, str]:
    """stored_as → sha256 of every attachment row of a SQLite copy."""
    table = attachments
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.select(table.c.stored_as, table.c.sha256))
            return {str(stored_as): str(digest) for stored_as, digest in rows}
    finally:
        engine.dispose()


def _data_files(data_dir: Path, attached: dict[str, str]) -> Iterator[tuple[str, Path]]:
    if not data_dir.is_dir():
        return
    for path in sorted(data_dir.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        relative = path.relative_to(data_dir).as_posix()
        if relative in SKIPPED or any(relative.startswith(d + "/") for d in SKIPPED_DIRS):
            continue
        if (
            relative.startswith("attachments/")
            and relative.removeprefix("attachments/") not in attached
        ):
            continue  # no committed row names it (yet): a ticket being created
        yield relative, path


def _copy(source: Path, target: Path, relative: str) -> dict[str, Any]:
    """Copy while hashing: the manifest says what was read, not what was meant."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as reader, target.open("wb") as writer:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
    return {"path": relative, "size": size, "sha256": digest.hexdigest()}


def _write_json(path: Path, value: object) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# --- restore ----------------------------------------------------------------------------------


def read_manifest(source: Path) -> dict[str, Any]:
    path = source / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(
            f"{source} n'est pas une sauvegarde de kb : {MANIFEST} manquant."
        ) from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path} illisible : {exc}") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path} : format de sauvegarde inconnu ({manifest.get('format')!r}).")
    return manifest


def verify(source: Path, manifest: dict[str, Any]) -> list[str]:
    """Every file of the backup, hashed again: what is missing or changed, one line each."""
    problems = []
    database = manifest["database"]
    entries = [(database["file"], database)]
    entries += [(f"data/{f['path']}", f) for f in manifest["data"]]
    entries += [(f"content/{f['path']}", f) for f in manifest["content"]]
    for relative, entry in entries:
        path = source / relative
        if not path.is_file():
            problems.append(f"{relative} : fichier manquant")
        elif path.stat().st_size != entry["size"] or sha256(path) != entry["sha256"]:
            problems.append(f"{relative} : contenu modifié depuis la sauvegarde (sha256)")
    return problems


def occupied(settings: Settings) -> list[str]:
    """What a restore would overwrite: tables in the database, files in the data dir."""
    found = []
    tables = _tables(settings)
    if tables:
        found.append(f"la base contient déjà {len(tables)} table(s)")
    data_dir = settings.data_dir
    if data_dir.is_dir():
        files = [
            p
            for p in data_dir.rglob("*")
            if p.is_file() and p.relative_to(data_dir).as_posix() not in SKIPPED
        ]
        if files:
            found.append(f"{data_dir} contient déjà {len(files)} fichier(s)")
    return found


def _tables(settings: Settings) -> list[str]:
    if _kind(settings) == "sqlite" and not _sqlite_path(settings).exists():
        return []  # connecting would create it
    engine = db.make_engine(settings)
    try:
        with engine.connect() as connection:
            return sa.inspect(connection).get_table_names()
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0]
        raise BackupError(f"Base de données injoignable : {reason}") from None
    finally:
        engine.dispose()


def restore(
    settings: Settings,
    source: Path,
    *,
    force: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> Report:
    """Put a backup back: checked first, whole; refuses to overwrite unless `force`."""
    manifest = read_manifest(source)
    kind = _kind(settings)
    if manifest["database"]["kind"] != kind:
        raise BackupError(
            f"Sauvegarde d'une base {manifest['database']['kind']}, "
            f"mais KB_DATABASE_URL désigne une base {kind}."
        )
    problems = verify(source, manifest)
    if problems:
        raise BackupError("Sauvegarde endommagée, rien n'a été restauré :\n" + "\n".join(problems))
    in_place = occupied(settings)
    if in_place and not force:
        raise BackupError(
            "La restauration écraserait des données existantes ("
            + " ; ".join(in_place)
            + ") : relancez avec --force pour les remplacer."
        )
    report = Report(database=kind)
    database_file = source / manifest["database"]["file"]
    progress("base de données…")
    if kind == "sqlite":
        _sqlite_restore(database_file, _sqlite_path(settings))
    else:
        _pg_restore(settings, database_file, clean=bool(in_place))
    data_dir = settings.data_dir
    if force:
        for name in ("attachments", "uploads", "outbox", "journal"):
            shutil.rmtree(data_dir / name, ignore_errors=True)
    progress("fichiers de données…")
    for entry in manifest["data"]:
        _put(source / "data" / entry["path"], data_dir / entry["path"])
        report.files += 1
        report.bytes += entry["size"]
    content_dir = settings.content_dir
    if manifest["content"]:
        if content_dir.exists() and any(content_dir.iterdir()):
            report.notes.append(f"contenu laissé en place : {content_dir} n'est pas vide")
        else:
            for entry in manifest["content"]:
                _put(source / "content" / entry["path"], content_dir / entry["path"])
                report.content += 1
    return report


def _sqlite_restore(backup_file: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.closing(sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)  # page by page into the live file: WAL and readers stay coherent
        dst.execute("PRAGMA journal_mode=WAL")


def _pg_restore(settings: Settings, dump: Path, *, clean: bool) -> None:
    url, env = _libpq(settings)
    command = ["pg_restore", "--no-owner", "--no-privileges", "--single-transaction"]
    if clean:
        command += ["--clean", "--if-exists"]
    _run([*command, "--dbname", url, str(dump)], env, "pg_restore")


def _put(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        source.open("rb") as reader,
        tempfile.NamedTemporaryFile(dir=target.parent, prefix=".restore-", delete=False) as tmp,
    ):
        shutil.copyfileobj(reader, tmp, CHUNK)
    os.replace(tmp.name, target)
