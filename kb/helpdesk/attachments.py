"""Attachments: what a message received (files already on disk, hashed and counted), the
store they are moved into, and the errors about their size or their absence."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import shutil
import time
import unicodedata
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kb.errors import KbError

MAX_FILES = 20
NOTE_SECONDS = 3600  # a note on a move this old: its transaction was committed or undone
# A folder whose owner holds no lease is removed once nothing in it changed for this long.
QUIET_SECONDS = 120.0  # KB_LEASE_SECONDS in a serving process


class UploadTooLarge(KbError):
    status = 413
    code = "envoi_trop_volumineux"


class StorageFull(UploadTooLarge):
    """The disk filled up while the files were written: the same answer, kept form included."""

    status = 507
    code = "espace_insuffisant"


class AttachmentMissing(KbError):
    """A row names a file the data dir no longer has (a partial restore, a manual clean-up)."""

    status = 410
    code = "piece_jointe_indisponible"


def storage_full() -> StorageFull:
    return StorageFull(
        "Plus assez d'espace disque pour enregistrer vos pièces jointes. Réessayez plus tard, "
        "ou envoyez des fichiers plus petits : votre message est conservé."
    )


def no_space_left(exc: BaseException) -> bool:
    """The disk, or the account's quota, is full."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def too_large(limit: int) -> UploadTooLarge:
    return UploadTooLarge(
        "Les pièces jointes dépassent la taille autorisée ({limit} en tout). "
        "Retirez ou compressez un fichier, puis envoyez à nouveau : votre message est conservé.",
        sizes={"limit": limit},
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


class Store:
    """Where attachments live: data_dir/attachments/<yyyy>/<mm>/<random>; each serving process
    (its instance id, never its PID) has a temp dir for what it receives, and a journal dir for
    what it moves in place."""

    def __init__(self, data_dir: Path, owner: str | None = None) -> None:
        owner = owner or uuid.uuid4().hex[:16]
        self.root = data_dir / "attachments"
        self.temp_root = self.root / "tmp"
        self.temp_dir = self.temp_root / owner
        self.journal_root = data_dir / "journal"
        self.journal_dir = self.journal_root / owner
        self._notes_pruned_at = time.time()

    def final_path(self, stored_as: str) -> Path:
        path = (self.root / stored_as).resolve()
        if self.root.resolve() not in path.parents:
            raise KbError("Chemin de pièce jointe invalide.")
        return path

    def existing(self, stored_as: str) -> Path:
        """The stored file, or AttachmentMissing when its row outlived it."""
        try:
            path = self.final_path(stored_as)
        except KbError:
            path = None
        if path is None or not path.is_file():
            raise AttachmentMissing(
                "Ce fichier n'est plus disponible sur le serveur. Le message qui le "
                "mentionne reste lisible ; demandez à son auteur de le joindre à nouveau."
            )
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
        self,
        attached: Callable[[list[str]], Collection[str]] | None = None,
        alive: Collection[str] = (),
        quiet_seconds: float = QUIET_SECONDS,
    ) -> int:
        """What processes that died (killed, crashed, on any host) left: their unfinished
        uploads, and the files they moved in place for rows never committed. `alive` names the
        instances whose lease runs; a folder of any other owner is left alone until nothing in
        it changed for `quiet_seconds` (an instance just starting, or a kb of an older version
        still receiving). `attached` says which rows were committed (without it, moved files
        are kept)."""
        removed = 0
        dead = functools.partial(
            _of_dead_owners, alive={*alive, self.temp_dir.name}, quiet_seconds=quiet_seconds
        )
        for folder in dead(self.journal_root):
            notes = dict(_read_note(p) for p in folder.iterdir())
            notes.pop("", None)  # a note the process died writing: its move never happened
            committed = set(notes) if attached is None or not notes else attached(list(notes))
            for stored_as, origin in notes.items():
                if stored_as not in committed:
                    self._undo(stored_as, Path(origin) if origin else None)
                    removed += 1
            shutil.rmtree(folder, ignore_errors=True)
        for folder in dead(self.temp_root):
            removed += sum(1 for p in folder.rglob("*") if p.is_file())
            shutil.rmtree(folder, ignore_errors=True)
        return removed


def _of_dead_owners(root: Path, alive: Collection[str], quiet_seconds: float) -> list[Path]:
    if not root.is_dir():
        return []
    limit = time.time() - quiet_seconds
    return [
        f for f in root.iterdir() if f.is_dir() and f.name not in alive and _last_change(f) < limit
    ]


def _last_change(folder: Path) -> float:
    latest = 0.0
    with contextlib.suppress(OSError):
        latest = folder.stat().st_mtime
        for path in folder.rglob("*"):
            with contextlib.suppress(OSError):
                latest = max(latest, path.stat().st_mtime)
    return latest


def _read_note(path: Path) -> tuple[str, str]:
    stored_as, _, origin = path.read_text(encoding="utf-8").partition("\n")
    return stored_as, origin
