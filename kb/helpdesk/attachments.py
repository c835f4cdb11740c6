"""Uploads streamed to the data dir, hashed and counted as they come: never whole in memory."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import anyio
from python_multipart.exceptions import ParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from kb.errors import BadRequest, KbError

FIELD_LIMIT = 256 * 1024  # a text field larger than this is not a form a person typed
TEXT_LIMIT = 1024 * 1024  # all the text fields of one form together
MAX_TEXT_FIELDS = 100
BATCH = 1024 * 1024  # parse and write in a worker thread once this much has arrived
MAX_FILES = 20
NOTE_SECONDS = 3600  # a note on a move this old: its transaction was committed or undone


class UploadTooLarge(KbError):
    status = 413
    code = "envoi_trop_volumineux"


class StorageFull(UploadTooLarge):
    """The disk filled up while the files were written: the same answer, kept form included."""

    status = 507
    code = "espace_insuffisant"


def storage_full() -> StorageFull:
    return StorageFull(
        "Plus assez d'espace disque pour enregistrer vos pièces jointes. Réessayez plus tard, "
        "ou envoyez des fichiers plus petits : votre message est conservé."
    )


def no_space_left(exc: BaseException) -> bool:
    """The disk, or the account's quota, is full."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def human_size(size: float) -> str:
    """'6 Go', '12,5 Mo': French units, decimal comma."""
    for unit in ("octets", "Ko", "Mo", "Go", "To"):
        if size < 1024 or unit == "To":
            text = f"{size:.1f}".rstrip("0").rstrip(".") if unit != "octets" else str(int(size))
            return f"{text.replace('.', ',')} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def too_large(limit: int) -> UploadTooLarge:
    return UploadTooLarge(
        f"Les pièces jointes dépassent la taille autorisée ({human_size(limit)} en tout). "
        "Retirez ou compressez un fichier, puis envoyez à nouveau : votre message est conservé."
    )


def safe_filename(raw: str) -> str:
    """The name a user sees: no folders, no control characters, no leading dots, 180 chars."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = re.sub(r'[<>:"|?*]', "_", name).strip().lstrip(".").strip()
    if len(name) > 180:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 180 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else name[:180]
    return name or "piece-jointe"


@dataclass
class ReceivedFile:
    field: str
    filename: str
    content_type: str
    temp_path: Path
    size: int = 0
    sha256: str = ""


@dataclass
class ReceivedForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[ReceivedFile] = field(default_factory=list)
    lists: dict[str, list[str]] = field(default_factory=dict)  # every value of repeated fields

    def discard(self) -> None:
        for received in self.files:
            received.temp_path.unlink(missing_ok=True)


class _Receiver:
    """python-multipart callbacks: text fields in memory (bounded), files straight to disk."""

    def __init__(self, temp_dir: Path, limit: int) -> None:
        self.temp_dir, self.limit = temp_dir, limit
        self.form = ReceivedForm()
        self.total = 0
        self._headers: dict[str, str] = {}
        self._header_name = b""
        self._header_value = b""
        self._field: str | None = None
        self._value = bytearray()
        self._text_fields = 0
        self._text_bytes = 0
        self._file: ReceivedFile | None = None
        self._handle: IO[bytes] | None = None
        self._hash: Any = None

    def callbacks(self) -> Any:  # python-multipart's MultipartCallbacks, a TypedDict
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers, self._header_name, self._header_value = {}, b"", b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        name = self._header_name.decode("latin-1").lower()
        # Latin-1 maps bytes to characters one for one: parse_options_header gets the raw
        # bytes back, and the file name is then decoded as the UTF-8 browsers send.
        self._headers[name] = self._header_value.decode("latin-1")
        self._header_name, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", ""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        self._field, self._value = name, bytearray()
        if filename is None:
            return
        if not filename:  # an empty file input: nothing chosen
            self._field = None
            return
        if len(self.form.files) >= MAX_FILES:
            raise BadRequest(f"{MAX_FILES} pièces jointes au plus par message.")
        path = self.temp_dir / uuid.uuid4().hex
        self._file = ReceivedFile(
            field=name,
            filename=safe_filename(filename.decode("utf-8", "replace")),
            content_type=self._headers.get("content-type", "application/octet-stream")[:255],
            temp_path=path,
        )
        self.form.files.append(self._file)
        self._handle = open(path, "xb")  # noqa: SIM115 - closed in _part_end or close()
        self._hash = hashlib.sha256()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._file is not None and self._handle is not None:
            self.total += len(chunk)
            if self.total > self.limit:
                raise too_large(self.limit)
            self._handle.write(chunk)
            self._hash.update(chunk)
            self._file.size += len(chunk)
        elif self._field is not None:
            self._value += chunk
            if len(self._value) > FIELD_LIMIT:
                raise BadRequest("Un champ du formulaire est trop long.")

    def _part_end(self) -> None:
        if self._file is not None and self._handle is not None:
            # On disk before the ticket's row says it is there: a crash cannot leave a row
            # pointing at a file the kernel had not written yet.
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._file.sha256 = self._hash.hexdigest()
            self._file, self._handle = None, None
        elif self._field is not None:
            value = self._value.decode("utf-8", "replace")
            self._text_fields += 1
            self._text_bytes += len(self._value)
            if self._text_fields > MAX_TEXT_FIELDS or self._text_bytes > TEXT_LIMIT:
                raise BadRequest("Le formulaire contient trop de champs ou trop de texte.")
            if "\x00" in value:
                raise BadRequest("Caractère nul interdit dans le formulaire.")
            self.form.fields.setdefault(self._field, value)
            self.form.lists.setdefault(self._field, []).append(value)
        self._field = None

    def close(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):  # a full disk fails the flush of what is left
                self._handle.close()


async def batches(stream: AsyncIterator[bytes], size: int = BATCH) -> AsyncIterator[bytes]:
    """A request body in pieces of at least `size`, each worth a trip to a worker thread."""
    pending: list[bytes] = []
    count = 0
    try:
        async for chunk in stream:
            pending.append(chunk)
            count += len(chunk)
            if count >= size:
                yield b"".join(pending)
                pending, count = [], 0
    except Exception:
        # The connection dropped: what did arrive is handed on first (tus keeps it).
        if pending:
            yield b"".join(pending)
        raise
    if pending:
        yield b"".join(pending)


async def pipelined(batches: AsyncIterator[bytes], write: Callable[[bytes], object]) -> None:
    """While a worker thread writes and hashes one batch (both release the GIL), the event
    loop reads the next: two cores at work, at most two batches in memory."""
    send, receive_batches = anyio.create_memory_object_stream[bytes](1)

    async def consume() -> None:
        async with receive_batches:
            async for batch in receive_batches:
                await anyio.to_thread.run_sync(write, batch)

    source_failed: Exception | None = None
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(consume)
            async with send:
                try:
                    async for batch in batches:
                        await send.send(batch)
                except Exception as exc:  # a dropped connection: what arrived is still written
                    source_failed = exc
    except BaseExceptionGroup as group:  # one failure at a time: the first one says why
        raise _first_cause(group) from None
    if source_failed is not None:
        raise source_failed


def _first_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The failure itself, not its echoes (the other side cancelled, or its stream broken)."""
    echoes = (anyio.get_cancelled_exc_class(), anyio.BrokenResourceError)
    leaves: list[BaseException] = []
    pending: list[BaseException] = list(group.exceptions)
    while pending:
        exc = pending.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            pending[:0] = list(exc.exceptions)
        else:
            leaves.append(exc)
    return next((e for e in leaves if not isinstance(e, echoes)), leaves[0])


async def receive(
    stream: AsyncIterator[bytes], content_type: str, temp_dir: Path, limit: int
) -> ReceivedForm:
    """Parse a multipart body as it arrives; on any failure, no file is left behind."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BadRequest("Le formulaire doit être envoyé en multipart/form-data.")
    temp_dir.mkdir(parents=True, exist_ok=True)
    receiver = _Receiver(temp_dir, limit)
    parser = MultipartParser(boundary, receiver.callbacks())
    try:
        await pipelined(batches(stream), parser.write)
        parser.finalize()
    except BaseException as exc:
        receiver.close()
        receiver.form.discard()
        if no_space_left(exc):
            error: BaseException = storage_full()
        elif isinstance(exc, ParseError):
            error = BadRequest("Le formulaire reçu est mal formé : envoyez-le à nouveau.")
        else:
            error = exc
        if isinstance(error, KbError):
            error.fields = dict(receiver.form.fields)  # type: ignore[attr-defined]
        if error is exc:
            raise
        raise error from exc
    receiver.close()
    return receiver.form


class Store:
    """Where attachments live: data_dir/attachments/<yyyy>/<mm>/<random>; each process has a
    temp dir for what it receives, and a journal dir for what it moves in place."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "attachments"
        self.temp_root = self.root / "tmp"
        self.temp_dir = self.temp_root / str(os.getpid())
        self.journal_root = data_dir / "journal"
        self.journal_dir = self.journal_root / str(os.getpid())
        self._notes_pruned_at = time.time()

    def final_path(self, stored_as: str) -> Path:
        path = (self.root / stored_as).resolve()
        if self.root.resolve() not in path.parents:
            raise KbError("Chemin de pièce jointe invalide.")
        return path

    def keep(self, source: Path, year: int, month: int) -> str:
        """Move (rename, never copy) a received file to its final place; returns its name.

        A note in this process's journal names the file until its rows are committed: if the
        process dies before, the next start undoes the move (`remove_leftovers`)."""
        name = uuid.uuid4().hex
        stored_as = f"{year:04d}/{month:02d}/{name}"
        target = self.root / stored_as
        target.parent.mkdir(parents=True, exist_ok=True)
        origin = "" if source.parent == self.temp_dir else str(source)
        self._prune_notes()
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        (self.journal_dir / name).write_text(f"{stored_as}\n{origin}", encoding="utf-8")
        os.replace(source, target)
        return stored_as

    def settled(self, stored: Iterable[tuple[str, Path | None]]) -> None:
        """The rows naming these files are committed: their journal notes can go."""
        for name, _origin in stored:
            (self.journal_dir / name.rsplit("/", 1)[-1]).unlink(missing_ok=True)

    def forget(self, stored: Iterable[tuple[str, Path | None]]) -> None:
        """Undo `keep` after a failed transaction: delete, or move back where it came from."""
        for name, origin in stored:
            self._undo(name, origin)
            (self.journal_dir / name.rsplit("/", 1)[-1]).unlink(missing_ok=True)

    def _undo(self, name: str, origin: Path | None) -> None:
        with contextlib.suppress(OSError, KbError):
            if origin is None:
                self.final_path(name).unlink()
            else:
                os.replace(self.final_path(name), origin)

    def _prune_notes(self) -> None:
        """Notes of transactions settled long ago (committed, or undone by `forget`)."""
        now = time.time()
        if now - self._notes_pruned_at < NOTE_SECONDS / 6:
            return
        self._notes_pruned_at = now
        for note in self.journal_dir.glob("*"):
            with contextlib.suppress(OSError):
                if note.stat().st_mtime < now - NOTE_SECONDS:
                    note.unlink()

    def remove_leftovers(
        self, attached: Callable[[list[str]], Collection[str]] | None = None
    ) -> int:
        """What processes that died (killed, crashed) left: their unfinished uploads, and the
        files they moved in place for rows never committed. `attached` says which rows were
        (without it, moved files are kept)."""
        removed = 0
        for folder in _of_dead_processes(self.journal_root):
            notes = dict(_read_note(p) for p in folder.iterdir())
            notes.pop("", None)  # a note the process died writing: its move never happened
            committed = set(notes) if attached is None or not notes else attached(list(notes))
            for stored_as, origin in notes.items():
                if stored_as not in committed:
                    self._undo(stored_as, Path(origin) if origin else None)
                    removed += 1
            shutil.rmtree(folder, ignore_errors=True)
        for folder in _of_dead_processes(self.temp_root):
            removed += sum(1 for p in folder.rglob("*") if p.is_file())
            shutil.rmtree(folder, ignore_errors=True)
        return removed


def _of_dead_processes(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return [
        f for f in root.iterdir() if f.is_dir() and not (f.name.isdigit() and _alive(int(f.name)))
    ]


def _read_note(path: Path) -> tuple[str, str]:
    stored_as, _, origin = path.read_text(encoding="utf-8").partition("\n")
    return stored_as, origin


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
