"""The live generation of an index folder, as every request finds it: opened once, reopened
when a build switches to a new one, a damaged one reported without being tried at each request."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from kb.errors import KbError
from kb.knowledge.search.indexer import CURRENT, current_generation
from kb.knowledge.search.integrity import IndexCorrupt
from kb.knowledge.search.searcher import Snapshot

BROKEN_SECONDS = 5.0  # a generation that failed to open is tried again after this long


class IndexMissing(KbError):
    status = 503
    code = "index_absent"


class SearchIndex:
    """The live generation of an index folder, reopened when a build switches it."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._broken: tuple[Path, float, IndexCorrupt] | None = None
        self._seen: tuple[int, int, int] | None = None
        self._current = os.fspath(index_dir / CURRENT)  # stat'ed by every request

    def snapshot(self) -> Snapshot:
        # A build replaces CURRENT (a new inode): one stat per request tells whether to look.
        try:
            stat = os.stat(self._current)
            seen: tuple[int, int, int] | None = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except OSError:
            seen = None
        current = self._snapshot
        if seen is not None and current is not None and seen == self._seen:
            return current
        snapshot = self._snapshot_of_current()
        self._seen = seen
        return snapshot

    def _snapshot_of_current(self) -> Snapshot:
        generation = current_generation(self.index_dir)
        if generation is None:
            if (self.index_dir / CURRENT).exists():
                raise IndexCorrupt(f"{CURRENT} ne désigne aucune génération complète")
            raise IndexMissing(
                "L'index de recherche n'est pas encore construit : lancez « kb build »."
            )
        current = self._snapshot
        if current is not None and current.generation == generation:
            return current
        with self._lock:
            if self._snapshot is None or self._snapshot.generation != generation:
                self._snapshot = self._open(generation)
                # The previous snapshot is left to the garbage collector: a request may still
                # be reading it, and its files stay readable until then.
            return self._snapshot

    def _open(self, generation: Path) -> Snapshot:
        broken = self._broken
        if broken is not None and broken[0] == generation and time.monotonic() < broken[1]:
            raise broken[2]  # not checked again on every request: a few seconds apart
        try:
            return Snapshot(generation)
        except Exception as exc:
            error = exc if isinstance(exc, IndexCorrupt) else None
            if error is None:  # what Whoosh says of the bytes it reads, paths left out
                error = IndexCorrupt(f"{generation.name} illisible : {type(exc).__name__}")
                error.__cause__ = exc
            self._broken = (generation, time.monotonic() + BROKEN_SECONDS, error)
            raise error from error.__cause__
