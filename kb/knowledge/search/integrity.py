"""A generation's files as they were written: sizes and CRC-32, checked before they are read
or carried over, so that damage is reported instead of answered from."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kb.errors import KbError

FileCheck = tuple[int, int, int, int]  # size, mtime_ns, inode, CRC-32


class IndexCorrupt(KbError):
    """The live generation cannot be read as it was written: only a full build repairs it."""

    status = 503
    code = "index_endommage"

    def __init__(self, what: str) -> None:
        super().__init__(
            f"L'index de recherche est endommagé ({what}) : "
            "reconstruisez-le avec « kb build --full »."
        )


def verify_files(generation: Path, meta: dict[str, Any]) -> None:
    """The generation's files have the sizes and checksums written with them."""
    for name, (size, checksum) in meta.get("files", {}).items():
        path = generation / name
        if not path.is_file():
            raise IndexCorrupt(f"{generation.name}/{name} manquant")
        if path.stat().st_size != size or _checksum(path) != checksum:
            raise IndexCorrupt(f"{generation.name}/{name} modifié depuis sa construction")


def verify(generation: Path, known: Mapping[str, Sequence[int]]) -> None:
    """As verify_files, reading again only the files whose size, mtime or inode changed since
    they were checksummed: rewritten by a hand or a tool, those are the suspects."""
    for name, (size, mtime_ns, inode, checksum) in known.items():
        path = generation / name
        try:
            stat = path.stat()
        except OSError:
            raise IndexCorrupt(f"{generation.name}/{name} manquant") from None
        if (stat.st_size, stat.st_mtime_ns, stat.st_ino) == (size, mtime_ns, inode):
            continue
        if stat.st_size != size or _checksum(path) != checksum:
            raise IndexCorrupt(f"{generation.name}/{name} modifié depuis sa construction")


def checksums(
    generation: Path, known: Mapping[str, Sequence[int]], skip: tuple[str, ...]
) -> dict[str, FileCheck]:
    """Each file's (size, mtime, inode, CRC), but those whose names start with one of `skip`;
    a file linked from a checked one keeps its CRC."""
    found: dict[str, FileCheck] = {}
    for p in sorted(generation.iterdir()):
        if not p.is_file() or p.name.startswith(skip) or p.name.endswith("LOCK"):
            continue
        stat = p.stat()
        seen = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
        before = known.get(p.name)
        same = before is not None and tuple(before[:3]) == seen
        found[p.name] = (*seen, int(before[3]) if before and same else _checksum(p))
    return found


def _checksum(path: Path) -> int:
    """CRC-32: against disks and hands that garble files, not against malice."""
    checksum = 0
    with open(path, "rb") as handle:
        while block := handle.read(1024 * 1024):
            checksum = zlib.crc32(block, checksum)
    return checksum
