"""Publishing: each replica notices a new content version by itself and rebuilds in the
background, serving the previous generation meanwhile."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kb.errors import KbError
from kb.knowledge.build import (
    ContentErrors,
    build,
    content_fingerprint,
    content_version,
    is_stale,
)

log = logging.getLogger("kb.knowledge.publishing")


class Publisher:
    """Checks the content every few seconds and builds a new generation when it changed and has
    stayed the same for one more check (a `git pull` or a copy in progress is not published
    half done). Content with errors is not published: the previous generation keeps serving and
    the problems are logged and reported by /readyz until the content changes again."""

    def __init__(self, content_dir: Path, index_dir: Path) -> None:
        self.content_dir, self.index_dir = content_dir, index_dir
        self.building = False
        self.problems: list[str] = []
        self._seen: str | None = None  # the fingerprint of the last check
        self._failed: str | None = None  # the fingerprint whose build failed
        self._lock = threading.Lock()

    def check(self, *, settle: bool = True) -> str | None:
        """Build when the content changed (and, with `settle`, held still since the last
        check); returns the new generation's name, or None when nothing was built."""
        if not self._lock.acquire(blocking=False):
            return None  # a check of this process still runs
        try:
            fingerprint = content_fingerprint(self.content_dir)
            previous, self._seen = self._seen, fingerprint
            if fingerprint == self._failed or not is_stale(self.content_dir, self.index_dir):
                return None
            if settle and previous is not None and previous != fingerprint:
                return None  # still changing: the next check builds what it has become
            with _exclusive(self.index_dir) as mine:
                if not mine:  # another worker of this replica builds it
                    return None
                return self._build(fingerprint)
        finally:
            self._lock.release()

    def _build(self, fingerprint: str) -> str | None:
        self.building = True
        try:
            version = content_version(self.content_dir)
            log.info("content: version %s found, building in the background", version)
            report = build(self.content_dir, self.index_dir)
        except ContentErrors as exc:
            self._failed, self.problems = fingerprint, [str(p) for p in exc.problems]
            for problem in self.problems:
                log.error("content: %s", problem)
            log.error("content: not published, the previous version keeps serving")
            return None
        except KbError as exc:
            self._failed, self.problems = fingerprint, [exc.message]
            log.error("content: build failed, the previous version keeps serving: %s", exc)
            return None
        finally:
            self.building = False
        self._failed, self.problems = None, []
        log.info("content: version %s published as %s (%s)", version, report.generation,
                 report.summary())  # fmt: skip
        return report.generation

    def status(self) -> dict[str, Any]:
        """For /readyz: whether a build runs, and why the latest content was not published."""
        state = "construction" if self.building else "erreurs" if self.problems else "à jour"
        return {"publishing": state, "content_problems": self.problems[:20]}


@contextlib.contextmanager
def _exclusive(index_dir: Path) -> Iterator[bool]:
    """True when this process may publish now; workers of one replica share an index dir."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".publish.lock", "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
