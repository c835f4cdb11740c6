"""What a build learnt, kept in its generation so that the next one reads, parses and renders
only what changed: each file's stat and hash, each article's header, each rendering's outline."""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import marshal
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from kb.knowledge.content import Article, Problem, read_article
from kb.knowledge.search.indexer import STATE
from kb.knowledge.tree import Tree

# Bump when what is kept changes: a state of another format is ignored (a full build).
FORMAT = b"kb-build-state 2\n"
# The fields of an article kept between builds: all but its body (read again to render it).
_KEPT = tuple(f.name for f in fields(Article) if f.name not in ("body", "path"))
_BODY = [f.name for f in fields(Article)].index("body")  # then "path"
_DIGEST, _UPDATED = _KEPT.index("digest"), _KEPT.index("updated")
assert [f.name for f in fields(Article)][_BODY : _BODY + 2] == ["body", "path"]


@dataclass
class BuildState:
    versions: tuple[str, str] = ("", "")  # the index schema and rendering it was built with
    scanned_at: int = 0  # when that build listed the content (ns): see Tree
    files: dict[str, list[Any]] = field(default_factory=dict)  # name -> stat and sha256
    articles: dict[str, list[Any]] = field(default_factory=dict)  # name -> category, header
    rendered: dict[str, list[Any]] = field(default_factory=dict)  # slug -> rendering()
    paths: dict[str, str] = field(default_factory=dict)  # an article's file -> its slug
    # The generation's files: size, mtime, inode, CRC-32.
    index_files: Mapping[str, Sequence[int]] = field(default_factory=dict)

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
            state = cls(**{k: data[k] for k in _FIELDS})
        except (OSError, ValueError, EOFError, TypeError, KeyError):
            return cls()
        state.versions = tuple(state.versions)  # type: ignore[assignment]
        return state if state.versions == versions else cls()

    def dumps(self) -> bytes:
        payload = marshal.dumps({k: getattr(self, k) for k in _FIELDS})
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
    listing: dict[str, Any],
    anchors: list[str],
    links: list[list[Any]],
) -> list[Any]:
    """`digest`: of what was rendered; `deps`: the files its links lead to; `notes`: its
    warnings; `listing`: its entry in the generation's list of articles."""
    return [digest, deps, notes, [], listing, marshal.dumps((anchors, links))]


def unpack_outline(kept: list[Any]) -> tuple[list[str], list[list[Any]]]:
    """The sections and the links of a rendering kept by `rendering`."""
    anchors, links = marshal.loads(kept[OUTLINE])
    return anchors, links


class ArticleMemo:
    """The articles of the previous build whose files have not changed, without parsing them
    again (`content.Memo`); and the records of this build's, for the next."""

    def __init__(self, tree: Tree, records: dict[str, list[Any]]) -> None:
        self.tree = tree
        self.previous = records
        self.records: dict[str, list[Any]] = {}
        self.recalled: set[str] = set()  # str(path): cheaper to hash than a Path

    def recall(self, path: Path, name: str, category: str) -> tuple[Article, list[Problem]] | None:
        record = self.previous.get(name)
        if record is None or record[0] != category:
            return None
        kept = record[1]
        try:
            if self.tree.sha(name) != kept[_DIGEST]:
                return None
        except OSError:
            return None  # read again: the loader says why it cannot be
        self.records[name] = record
        self.recalled.add(str(path))
        values = list(kept)
        values[_UPDATED] = dt.date.fromordinal(kept[_UPDATED]) if kept[_UPDATED] else None
        # Positional, in the order of Article's fields: thousands of these in each build.
        values[_BODY:_BODY] = ["", path]
        article = Article(*values)
        return article, [Problem(path, line, text, warning) for line, text, warning in record[2]]

    def remember(self, name: str, category: str, article: Article, problems: list[Problem]) -> None:
        kept = [getattr(article, k) for k in _KEPT]
        kept[_UPDATED] = article.updated.toordinal() if article.updated else 0
        said = [[p.line, p.message, p.warning] for p in problems]
        self.records[name] = [category, kept, said]

    def whole(self, article: Article) -> Article | None:
        """The article with its body: read again when it came from the memo."""
        if str(article.path) not in self.recalled:
            return article
        return read_article(article.path, article.category)
