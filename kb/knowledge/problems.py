"""A content problem as editors read it: `path:line: message`, error or warning."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the content, as `path:line: message`."""

    path: Path
    line: int
    message: str
    warning: bool = False

    def __str__(self) -> str:
        # One problem, one line: control characters from the file are shown escaped.
        message = _CONTROL.sub(lambda m: repr(m[0])[1:-1], self.message)
        return f"{display(self.path)}:{self.line}: {message}"


def display(path: Path) -> str:
    """The path as the editor typed it: relative to the current folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def closest(word: str, candidates: Iterable[str]) -> str:
    """' : vouliez-vous dire « … » ?' when a candidate is close enough, else ''."""
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" : vouliez-vous dire « {match[0]} » ?" if match else ""
