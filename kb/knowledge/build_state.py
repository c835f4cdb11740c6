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
FORMAT = b"kb-build-state 3\n"
# The fields of an article kept between builds: all but its body (read again to render it).
_KEPT = tuple(f.name for f in fields(Article) if f.name not in ("body", "path"))
_BODY = [f.name for f in fields(Article)].index("body")  # then "path"
_DIGEST, _UPDATED = _KEPT.index("digest"), _KEPT.index("updated")
assert [f.name for f in fields(Article)][_BODY : _BODY + 2] == ["body", "path"]


@dataclass
class BuildState:
    """Each file's and each article's record is kept marshal'd on its own: the next build
    writes again, as it read them, the bytes of all it did not change (after one edit, all
    but a few), instead of encoding tens of MB again."""

    versions: tuple[str, str] = ("", "")  # the index schema and rendering it was built with
    scanned_at: int = 0  # when that build listed the content (ns): see Tree
    files: dict[str, bytes] = field(default_factory=dict)  # name -> tree.pack_entry()
    articles: dict[str, bytes] = field(default_factory=dict)  # name -> category, header
    rendered: dict[str, list[Any]] = field(default_factory=dict)  # slug -> rendering()
    paths: dict[str, str] = field(default_factory=dict)  # an article's file -> its slug
    # The generation's files: size, mtime, inode, CRC-32.
    index_files: Mapping[str, Sequence[int]] = field(default_factory=dict)
    # slug -> each rendering as it was read, and its bytes: written again as they were while
    # the rendering is that very list (one that changes is a new list, never changed in place).
    as_read: dict[str, tuple[list[Any], bytes]] = field(default_factory=dict, repr=False)

    @classmethod
    def read(cls, generation: Path | None, versions: tuple[str, str]) -> BuildState:
        """The state written with `generation`; an empty one (everything built again) when
        there is none, or it is damaged, or made for another schema or rendering."""
        if generation is None:
            return cls()
        try:
            raw = (generation / STATE).read_bytes()
            if not raw.startswith(FORMAT):
                return cls()
            # A view, not a copy: tens of MB at 20,000 articles.
            view = memoryview(raw)
            checksum, payload = raw[len(FORMAT) : len(FORMAT) + 4], view[len(FORMAT) + 4 :]
            if zlib.crc32(payload).to_bytes(4, "big") != checksum:
                return cls()
            data = marshal.loads(payload)
            if tuple(data["versions"]) != versions:
                return cls()
            packed: dict[str, bytes] = data["rendered"]
            rendered = {slug: marshal.loads(kept) for slug, kept in packed.items()}
            state = cls(**{k: data[k] for k in _FIELDS if k not in ("rendered", "as_read")})
        except (OSError, ValueError, EOFError, TypeError, KeyError):
            return cls()
        state.versions = versions
        state.rendered = rendered
        state.as_read = {slug: (said, packed[slug]) for slug, said in rendered.items()}
        return state

    def dumps(self) -> bytes:
        as_read = self.as_read

        def pack(slug: str, said: list[Any]) -> bytes:
            known = as_read.get(slug)
            return known[1] if known is not None and known[0] is said else marshal.dumps(said)

        data = {k: getattr(self, k) for k in _FIELDS if k != "as_read"}
        data["rendered"] = {slug: pack(slug, said) for slug, said in self.rendered.items()}
        payload = marshal.dumps(data)
        return b"".join((FORMAT, zlib.crc32(payload).to_bytes(4, "big"), payload))  # one copy


_FIELDS = tuple(f.name for f in fields(BuildState))


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
    listing: str,
    anchors: list[str],
    links: list[list[Any]],
) -> list[Any]:
    """`digest`: of what was rendered; `deps`: the files its links lead to; `notes`: its
    warnings; `listing`: its entry in the generation's list of articles, as JSON (the list
    is written again after each edit: joined, not encoded again)."""
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
            if record[0] != category or self.tree.sha(name) != record[1][_DIGEST]:
                return None
        except (ValueError, EOFError, TypeError, IndexError):
            return None  # a record that cannot be: the file is read again
        except OSError:
            return None  # read again: the loader says why it cannot be
        kept = record[1]
        self.records[name] = packed
        values = list(kept)
        values[_UPDATED] = dt.date.fromordinal(kept[_UPDATED]) if kept[_UPDATED] else None
        # Positional, in the order of Article's fields: thousands of these in each build.
        values[_BODY:_BODY] = ["", path]
        article = Article(*values)
        return article, [Problem(path, line, text, warning) for line, text, warning in record[2]]

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
