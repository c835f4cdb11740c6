"""What a build learnt, kept in its generation so that the next one reads, parses and renders
only what changed: each file's stat and hash, each article's header, each rendering's outline."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gc
import marshal
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from kb.knowledge.content import Article, Problem, with_body
from kb.knowledge.search.indexer import STATE
from kb.knowledge.tree import Tree

# Bump when what is kept changes: a state of another format is ignored (a full build).
FORMAT = b"kb-build-state 4\n"
# The fields of an article kept between builds: all but its body (read again to render it).
_KEPT = tuple(f.name for f in fields(Article) if f.name not in ("body", "path"))
_BODY = [f.name for f in fields(Article)].index("body")  # then "path"
_DIGEST, _UPDATED = _KEPT.index("digest"), _KEPT.index("updated")
assert [f.name for f in fields(Article)][_BODY : _BODY + 2] == ["body", "path"]
_FIELDS = tuple(f.name for f in fields(Article))


def _restored(values: list[Any]) -> Article:
    """An article from its fields' values in order, restored as pickle and copy restore one:
    its __init__, a frozen setattr for each of 16 fields, was a third of a recall, and an
    article is recalled for each of 20,000 unchanged files."""
    article: Article = object.__new__(Article)
    article.__dict__.update(zip(_FIELDS, values, strict=True))
    return article


# The records are kept in PARTS files beside STATE, each record in the part its key (a file's
# name, an article's slug) falls in: after an edit, the parts without a changed record stay
# as they are, linked from the last generation like its segments; the others are written.
PARTS = 64
_SECTIONS = ("files", "articles", "rendered", "paths")
_MISSING = object()


def part_name(number: int) -> str:
    return f"{STATE.removesuffix('.bin')}-{number:02d}.bin"


def _part_of(key: str) -> int:
    return zlib.crc32(key.encode()) % PARTS


def _sealed(data: Any) -> bytes:
    payload = marshal.dumps(data)
    return b"".join((FORMAT, zlib.crc32(payload).to_bytes(4, "big"), payload))  # one copy


def _opened(raw: bytes) -> Any:
    """What `_sealed` sealed; ValueError when it is not that, whole."""
    if not raw.startswith(FORMAT):
        raise ValueError("another format")
    # A view, not a copy: MBs at 20,000 articles.
    view = memoryview(raw)
    checksum, payload = raw[len(FORMAT) : len(FORMAT) + 4], view[len(FORMAT) + 4 :]
    if zlib.crc32(payload).to_bytes(4, "big") != checksum:
        raise ValueError("damaged")
    return marshal.loads(payload)


@dataclass
class BuildState:
    """Each file's and each article's record is kept marshal'd on its own, in one of PARTS
    files: the next build writes again only the parts where a record changed (after one
    edit, one or two of 64), instead of encoding and writing tens of MB again."""

    versions: tuple[str, str] = ("", "")  # the index schema and rendering it was built with
    scanned_at: int = 0  # when that build listed the content (ns): see Tree
    files: dict[str, bytes] = field(default_factory=dict)  # name -> Tree.known()
    articles: dict[str, bytes] = field(default_factory=dict)  # name -> category, header
    rendered: dict[str, list[Any]] = field(default_factory=dict)  # slug -> rendering()
    paths: dict[str, str] = field(default_factory=dict)  # an article's file -> its slug
    # The generation's files: size, mtime, inode, CRC-32.
    index_files: Mapping[str, Sequence[int]] = field(default_factory=dict)
    # slug -> each rendering as it was read, and its bytes: written again as they were while
    # the rendering is that very list (one that changes is a new list, never changed in place).
    as_read: dict[str, tuple[list[Any], bytes]] = field(default_factory=dict, repr=False)
    # Each part as read (section -> key -> record), and its CRC: a part whose records are all
    # the very objects read is left as it is.
    parts: list[dict[str, dict[str, Any]]] = field(default_factory=list, repr=False)
    part_crcs: list[int] = field(default_factory=list, repr=False)

    @classmethod
    def read(cls, generation: Path | None, versions: tuple[str, str]) -> BuildState:
        """The state written with `generation`; an empty one (everything built again) when
        there is none, or it or one of its parts is damaged, missing, of another build (its
        CRC is not the one written in STATE), or made for another schema or rendering."""
        if generation is None:
            return cls()
        try:
            head = _opened((generation / STATE).read_bytes())
            if tuple(head["versions"]) != versions or len(head["parts"]) != PARTS:
                return cls()
            state = cls(versions, head["scanned_at"], index_files=head["index_files"])
            packed: dict[str, bytes] = {}
            for number, crc in enumerate(head["parts"]):
                raw = (generation / part_name(number)).read_bytes()
                if int.from_bytes(raw[len(FORMAT) : len(FORMAT) + 4], "big") != crc:
                    return cls()
                part = _opened(raw)
                state.files.update(part["files"])
                state.articles.update(part["articles"])
                state.paths.update(part["paths"])
                packed.update(part["rendered"])
                state.parts.append(part)
                state.part_crcs.append(crc)
            rendered = {slug: marshal.loads(kept) for slug, kept in packed.items()}
        except (OSError, ValueError, EOFError, TypeError, KeyError, AttributeError):
            return cls()
        state.versions = versions
        state.rendered = rendered
        state.as_read = {slug: (said, packed[slug]) for slug, said in rendered.items()}
        return state

    def dumps(self) -> dict[str, bytes | None]:
        """STATE and each part file's bytes; None for a part that has not changed since read
        (the file the last generation links into this one)."""
        as_read, unread = self.as_read, (None, b"")
        rendered: dict[str, bytes] = {}
        for slug, said in self.rendered.items():  # as read while the very list read
            known = as_read.get(slug, unread)
            rendered[slug] = known[1] if known[0] is said else marshal.dumps(said)
        new: dict[str, dict[str, Any]] = {"files": self.files, "articles": self.articles}
        new.update(rendered=rendered, paths=self.paths)
        parts: list[dict[str, dict[str, Any]]] = [{k: {} for k in _SECTIONS} for _ in range(PARTS)]
        changed = set() if len(self.parts) == PARTS else set(range(PARTS))
        placed = 0
        for number, old in enumerate(self.parts):
            for section in _SECTIONS:
                now, was = new[section], old[section]
                if was.items() <= now.items():  # each record still there, the same: asked in C
                    parts[number][section] = dict(was)
                    placed += len(was)
                    continue
                kept = parts[number][section]
                for key, record in was.items():
                    record_now = now.get(key, _MISSING)
                    if record_now is _MISSING:
                        changed.add(number)
                        continue
                    if record_now is not record and record_now != record:
                        changed.add(number)
                    kept[key] = record_now
                placed += len(kept)
        if placed != sum(len(records) for records in new.values()):  # new keys
            for section in _SECTIONS:
                for key, record in new[section].items():
                    number = _part_of(key)
                    if key not in parts[number][section]:
                        parts[number][section][key] = record
                        changed.add(number)
        out: dict[str, bytes | None] = {}
        crcs = []
        for number, part in enumerate(parts):
            if number in changed:
                out[part_name(number)] = raw = _sealed(part)
                crcs.append(int.from_bytes(raw[len(FORMAT) : len(FORMAT) + 4], "big"))
            else:
                out[part_name(number)] = None
                crcs.append(self.part_crcs[number])
        head = {"versions": self.versions, "scanned_at": self.scanned_at, "parts": crcs}
        head["index_files"] = dict(self.index_files)
        out[STATE] = _sealed(head)
        return out


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """While the state and the articles are read: tens of thousands of objects, none in a
    cycle, whose coming makes the cyclic collector walk the whole heap again and again (at
    5,000 articles, a third of the CPU time of a build after one edit)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            # What came meanwhile goes straight to the oldest generation (two list splices),
            # so that the first young collection after it does not walk it all (at 20,000
            # articles, 0.1 s of a build after one edit). Not where something is kept frozen
            # on purpose (kb/web/garbage.py): unfreezing would undo it.
            gc.freeze()
            gc.unfreeze()
        if was_enabled:
            gc.enable()


# What a build kept of an article's rendering, by position. The outline (its sections and
# links, by far the largest part) stays packed until the link check needs it.
DIGEST, DEPS, NOTES, LINK_NOTES, LISTING, OUTLINE = range(6)


def rendering(
    digest: str,
    deps: list[str],
    notes: list[list[Any]],
    listing: bytes,
    anchors: list[str],
    links: list[list[Any]],
) -> list[Any]:
    """`digest`: of what was rendered; `deps`: the files its links lead to; `notes`: its
    warnings; `listing`: its entry in the generation's list of articles, as UTF-8 JSON (the
    list is written again after each edit: joined, not encoded again)."""
    return [digest, deps, notes, [], listing, marshal.dumps((anchors, links))]


def unpack_outline(kept: list[Any]) -> tuple[list[str], list[list[Any]]]:
    """The sections and the links of a rendering kept by `rendering`."""
    anchors, links = marshal.loads(kept[OUTLINE])
    return anchors, links


class ArticleMemo:
    """The articles of the previous build whose files have not changed, without parsing them
    again (`content.Memo`); and the records of this build's, for the next."""

    def __init__(self, tree: Tree, records: dict[str, bytes]) -> None:
        self.tree = tree
        self.previous = records
        self.records: dict[str, bytes] = {}  # kept as read when the file has not changed

    def recall(self, path: Path, name: str, category: str) -> tuple[Article, list[Problem]] | None:
        packed = self.previous.get(name)
        if packed is None:
            return None
        try:
            record = marshal.loads(packed)
            kept = record[1]
            if record[0] != category or self.tree.sha(name) != kept[_DIGEST]:
                return None
            values = list(kept)
            values[_UPDATED] = dt.date.fromordinal(kept[_UPDATED]) if kept[_UPDATED] else None
            # Positional, in the order of Article's fields: thousands of these in each build.
            values[_BODY:_BODY] = ["", path]
            article = _restored(values)
            problems = [Problem(path, line, text, warning) for line, text, warning in record[2]]
        except (ValueError, EOFError, TypeError, IndexError):
            return None  # a record that cannot be (never damage: the CRC holds): read again
        except OSError:
            return None  # read again: the loader says why it cannot be
        self.records[name] = packed
        return article, problems

    def remember(
        self, name: str, category: str, article: Article, problems: list[Problem]
    ) -> Article:
        kept = [getattr(article, k) for k in _KEPT]
        kept[_UPDATED] = article.updated.toordinal() if article.updated else 0
        said = [[p.line, p.message, p.warning] for p in problems]
        self.records[name] = marshal.dumps([category, kept, said])
        # Without its body until it is rendered: at 20,000 articles, tens of MB that the
        # build's processes would otherwise each copy, page by page, from this one.
        return dataclasses.replace(article, body="")

    @staticmethod
    def whole(article: Article) -> Article | None:
        """The article with its body, read again; None when its file changed meanwhile."""
        return with_body(article)
