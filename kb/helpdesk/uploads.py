"""Resumable uploads (tus 1.0): bytes appended at an offset, owned by one account, expiring."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fcntl
import hashlib
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kb.db import lock_account
from kb.errors import BadRequest, KbError, NotFound
from kb.helpdesk.accounts import Account, now
from kb.helpdesk.attachments import safe_filename, too_large
from kb.helpdesk.file_writer import FileWriter
from kb.tables import uploads

CHECKSUMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}


# What can go wrong with an upload, said for people; the web maps each to its tus status.


class OffsetConflict(KbError):
    """The bytes sent do not start where the upload stands."""

    code = "decalage"


class UploadBusy(KbError):
    """Another connection is writing this upload."""

    code = "envoi_en_cours"


class ChecksumMismatch(KbError):
    """A chunk arrived damaged; it was taken back."""

    code = "somme_de_controle"


class QuotaExceeded(KbError):
    """The account holds as many unattached uploads, or bytes, as it may."""

    code = "quota"


@dataclass(frozen=True)
class Upload:
    id: str
    account_id: int
    filename: str
    content_type: str
    length: int
    offset: int
    created_at: dt.datetime
    expires_at: dt.datetime
    completed: bool
    sha256: str | None


def parse_metadata(header: str) -> dict[str, str]:
    """tus Upload-Metadata: 'key base64value,key2 base64value2'."""
    metadata: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _, value = pair.partition(" ")
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8") if value else ""
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest(f"Métadonnée « {key} » illisible (base64 attendu).") from None
        if any(not c.isprintable() for c in decoded):
            raise BadRequest(f"Métadonnée « {key} » : caractères de contrôle interdits.")
        metadata[key] = decoded
    return metadata


class Uploads:
    """The uploads of every account, under data_dir/uploads, with their rows in the database."""

    def __init__(self, engine: Engine, data_dir: Path, *, limit: int, expiry_hours: int,
                 max_unfinished: int, max_unfinished_bytes: int) -> None:  # fmt: skip
        self.engine = engine
        self.root = data_dir / "uploads"
        self.limit = limit
        self.expiry = dt.timedelta(hours=expiry_hours)
        self.max_unfinished = max_unfinished
        self.max_unfinished_bytes = max_unfinished_bytes
        # Hashing as the bytes arrive saves reading the file again at the end; a hash is only
        # good for the process that saw every byte, so after a restart it is recomputed once.
        self._hashes: dict[str, tuple[int, Any]] = {}
        self._lock = threading.Lock()

    def path(self, upload_id: str) -> Path:
        return self.root / upload_id

    def _row(self, row: Any) -> Upload:
        size = self.path(row.id).stat().st_size if self.path(row.id).exists() else 0
        return Upload(
            id=row.id,
            account_id=row.account_id,
            filename=row.filename,
            content_type=row.content_type,
            length=int(row.length),
            offset=min(size, int(row.length)),
            created_at=row.created_at,
            expires_at=row.expires_at,
            completed=row.completed_at is not None,
            sha256=row.sha256,
        )

    def get(self, account: Account, upload_id: str) -> Upload:
        """An upload of this account; anyone else's is simply not found."""
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(uploads).where(uploads.c.id == upload_id[:32])
            ).first()
        if row is None or row.account_id != account.id or row.expires_at <= now():
            raise NotFound("Cet envoi n'existe pas ou a expiré.")
        return self._row(row)

    def create(self, account: Account, length: int, metadata: dict[str, str]) -> Upload:
        if length < 0:
            raise BadRequest("Upload-Length doit être un nombre positif.")
        if length > self.limit:
            raise too_large(self.limit)
        with self.engine.begin() as connection:
            # Counted and reserved in one step: parallel creations for one account wait for
            # each other here, so none of them counts without the ones before it.
            lock_account(connection, account.id)
            # Every upload not yet attached to a ticket counts, finished or not: a finished
            # one holds its bytes on disk until a ticket takes it or it expires.
            pending = connection.execute(
                sa.select(
                    sa.func.count(), sa.func.coalesce(sa.func.sum(uploads.c.length), 0)
                ).where(uploads.c.account_id == account.id, uploads.c.expires_at > now())
            ).one()
            if pending[0] >= self.max_unfinished:
                raise QuotaExceeded(
                    f"{self.max_unfinished} fichier{'s' if self.max_unfinished > 1 else ''} "
                    "en attente au plus pour ce compte : "
                    "envoyez le ticket qui les joint, ou retirez-en un."
                )
            if pending[1] + length > self.max_unfinished_bytes:
                raise QuotaExceeded(
                    "Trop de fichiers en attente d'un ticket pour ce compte ({limit} au plus) : "
                    "envoyez le ticket qui les joint, ou retirez-en un.",
                    sizes={"limit": self.max_unfinished_bytes},
                )
            upload_id = secrets.token_hex(16)
            created = now()
            connection.execute(
                sa.insert(uploads).values(
                    id=upload_id,
                    account_id=account.id,
                    filename=safe_filename(metadata.get("filename", "")),
                    content_type=(metadata.get("filetype") or "application/octet-stream")[:255],
                    length=length,
                    created_at=created,
                    expires_at=created + self.expiry,
                )
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self.path(upload_id).touch(exist_ok=False)
        return self.get(account, upload_id)

    def begin_append(self, upload: Upload, offset: int, checksum: str | None) -> _Appender:
        """Open for appending at `offset`, which must be the current one; one writer at a time."""
        if upload.completed:
            raise OffsetConflict("Cet envoi est déjà complet.")
        algorithm, expected = _checksum(checksum)
        handle = open(self.path(upload.id), "r+b")  # noqa: SIM115 - closed in end_append
        try:
            # A PATCH cut a moment ago may still be writing what it received: wait for it.
            _lock(handle, fcntl.LOCK_EX)
            size = os.fstat(handle.fileno()).st_size
            if offset != size:
                raise OffsetConflict(
                    f"Décalage {offset} reçu, {size} attendu : reprenez l'envoi depuis {size}."
                )
        except BaseException:
            handle.close()
            raise
        handle.seek(size)
        with self._lock:
            known = self._hashes.get(upload.id)
        hasher = known[1] if known and known[0] == size else None
        if hasher is None and size == 0:
            hasher = hashlib.sha256()
        return _Appender(handle, size, upload.length - size, hasher, algorithm, expected)

    def settled(self, upload: Upload) -> Upload:
        """The offset once no PATCH is writing: a HEAD right after a cut gets every kept byte."""
        with open(self.path(upload.id), "rb") as handle:
            _lock(handle, fcntl.LOCK_SH)
        return self._refresh(upload)

    def end_append(self, upload: Upload, appender: _Appender) -> None:
        """Make what arrived durable; a chunk whose checksum does not match is taken back."""
        handle = appender.handle
        try:
            appender.file.finish()
            written_to = appender.start + appender.written
            mismatch = appender.expected is not None and appender.digest() != appender.expected
            if mismatch:
                handle.truncate(appender.start)
                os.fsync(handle.fileno())
                written_to, appender.hasher = appender.start, None
            with self._lock:
                if appender.hasher is not None:
                    self._hashes[upload.id] = (written_to, appender.hasher)
                else:
                    self._hashes.pop(upload.id, None)
        finally:
            handle.close()  # releases the lock
        if mismatch:
            raise ChecksumMismatch(
                "La somme de contrôle du morceau ne correspond pas : renvoyez-le."
            )

    def finish_if_complete(self, upload: Upload) -> Upload:
        """Once every byte is there: the SHA-256 (kept, or computed once) and completion."""
        current = self._refresh(upload)
        if current.completed or current.offset != current.length:
            return current
        with self._lock:
            known = self._hashes.pop(upload.id, None)
        if known and known[0] == current.length:
            digest = known[1].hexdigest()
        else:
            digest = _hash_file(self.path(upload.id))
        with self.engine.begin() as connection:
            connection.execute(
                sa.update(uploads)
                .where(uploads.c.id == upload.id)
                .values(completed_at=now(), sha256=digest)
            )
        return self._refresh(upload)

    def _refresh(self, upload: Upload) -> Upload:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(uploads).where(uploads.c.id == upload.id)).one()
        return self._row(row)

    def delete(self, upload: Upload) -> None:
        with self.engine.begin() as connection:
            connection.execute(sa.delete(uploads).where(uploads.c.id == upload.id))
        self.path(upload.id).unlink(missing_ok=True)
        with self._lock:
            self._hashes.pop(upload.id, None)

    def sweep(self) -> int:
        """Remove expired uploads, their rows and their bytes; and files with no row."""
        with self.engine.begin() as connection:
            expired: list[str] = list(
                connection.execute(sa.select(uploads.c.id).where(uploads.c.expires_at <= now()))
                .scalars()
                .all()
            )
            if expired:
                connection.execute(sa.delete(uploads).where(uploads.c.id.in_(expired)))
            known: set[str] = set(connection.execute(sa.select(uploads.c.id)).scalars())
        removed = 0
        if self.root.exists():
            for path in self.root.iterdir():
                if path.is_file() and path.name not in known:
                    path.unlink(missing_ok=True)
                    removed += 1
        with self._lock:
            for upload_id in expired:
                self._hashes.pop(upload_id, None)
        return removed


class _Appender:
    """Writes a PATCH body as it arrives, never past the upload's length."""

    def __init__(
        self, handle: IO[bytes], start: int, room: int, hasher: Any, algorithm: Any,
        expected: bytes | None,
    ) -> None:  # fmt: skip
        self.handle, self.start, self.room = handle, start, room
        self.hasher = hasher
        self.check = algorithm() if algorithm else None
        self.expected = expected
        self.written = 0
        self.file = FileWriter(handle.fileno(), start, [hasher, self.check])

    def write(self, chunk: bytes) -> None:
        if len(chunk) > self.room - self.written:
            raise BadRequest("Le morceau dépasse la taille annoncée de l'envoi.")
        self.file.write(chunk)
        self.written += len(chunk)

    def write_all(self, chunks: list[bytes]) -> None:
        """The pieces of a body as the server received them (joining them would copy)."""
        for chunk in chunks:
            self.write(chunk)

    def digest(self) -> bytes | None:
        return self.check.digest() if self.check is not None else None


LOCK_WAIT = 10.0


def _lock(handle: IO[bytes], mode: int) -> None:
    """flock, waiting a little for another request on the same upload to finish."""
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(handle.fileno(), mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise UploadBusy(
                    "Cet envoi est déjà en cours depuis une autre connexion."
                ) from None
            time.sleep(0.02)


def _checksum(header: str | None) -> tuple[Any, bytes | None]:
    if not header:
        return None, None
    name, _, value = header.strip().partition(" ")
    algorithm = CHECKSUMS.get(name.lower())
    if algorithm is None:
        raise BadRequest(f"Algorithme de somme de contrôle non pris en charge : « {name} ».")
    try:
        return algorithm, base64.b64decode(value, validate=True)
    except binascii.Error:
        raise BadRequest("Upload-Checksum illisible (base64 attendu).") from None


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(4 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
