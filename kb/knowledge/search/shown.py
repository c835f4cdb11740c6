"""What a hit shows of an article (title, category, a snippet with the words found), its text
read from the index and folded once, the most recent kept."""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass
from html import escape
from typing import Any

from kb.knowledge.search.analysis import fold
from kb.knowledge.search.results import HitRow
from kb.knowledge.search.snippets import (
    SNIPPET_CHARS,
    StemIndex,
    highlight_all,
    snippet,
    stem_index,
)

# Articles whose text, folded for snippets, stays in memory (per snapshot).
CACHED_TEXTS = 1024
# Shown this many times, an article's stems are indexed for its snippets. Measured on the
# alwaysdata articles (2,100 characters on average): scanning one for a query's words takes
# 0.05 ms, indexing it 0.5 ms, reading the index 0.004 ms: the index pays for itself after
# about ten showings, and an article shown a few times is one people keep finding.
INDEXED_AFTER = 3
# What hits of indexed articles showed (title and snippet), by article and the query's stems
# found in it: a query seen for the first time shares its words with earlier ones, and an
# article found by the same words shows the same passage. On the alwaysdata help center, with
# every query new (two or three words found in two articles or more), 35 % of hits were shown
# already with 4,096 kept, 58 % with 8,192, 75 % with 16,384; cutting a passage out costs about
# 20 µs a hit, ten hits a page. About 800 bytes each: 13 MB a snapshot when full.
CACHED_SHOWINGS = 16_384


@dataclass(frozen=True)
class Shown:
    """What a hit shows of an article, with its text folded once for snippets."""

    slug: str
    title: str
    category: str
    summary: str
    text: str
    folded_title: str
    folded: str

    @functools.cached_property
    def index(self) -> StemIndex:
        return stem_index(self.folded)

    @functools.cached_property
    def title_index(self) -> StemIndex:
        return stem_index(self.folded_title)

    @functools.cached_property
    def stems(self) -> frozenset[str]:
        """Every stem of the title and the text: what a query may find of this article."""
        return frozenset(self.index).union(self.title_index)


class ShownTexts:
    """The texts of the articles hits show, read from a generation's stored fields. Not
    thread-safe: its snapshot calls it under its lock."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self._shown: OrderedDict[int, Shown] = OrderedDict()
        self._seen: dict[int, int] = {}  # times shown in a hit, for those in _shown
        # (docnum, stems found...) -> (title with highlights, snippet): see CACHED_SHOWINGS.
        self._showings: OrderedDict[tuple[Any, ...], tuple[str, str]] = OrderedDict()

    def hit(self, docnum: int, score: float, stems: set[str]) -> HitRow:
        shown = self.shown(docnum)
        # Scanned for the query's words (a regex, in C) the first times it is shown; then
        # indexed. A query never seen on a large help center touches articles nobody has
        # shown yet, which indexing would slow down; the articles people keep finding, and
        # all of a small help center's, are soon indexed.
        seen = self._seen[docnum] = self._seen.get(docnum, 0) + 1
        if seen <= INDEXED_AFTER:
            title, passage = _showing(shown, stems, None, None)
        else:
            key = (docnum, *sorted(shown.stems.intersection(stems)))
            showing = self._showings.get(key)
            if showing is None:
                showing = _showing(shown, stems, shown.index, shown.title_index)
                self._showings[key] = showing
                if len(self._showings) > CACHED_SHOWINGS:
                    self._showings.popitem(last=False)
            else:
                self._showings.move_to_end(key)
            title, passage = showing
        return (
            shown.slug, shown.title, title, shown.category, f"/articles/{shown.slug}", passage,
            score,
        )  # fmt: skip

    def shown(self, docnum: int) -> Shown:
        shown = self._shown.get(docnum)
        if shown is None:
            stored = self._reader.stored_fields(docnum)
            text = stored["text"].replace("\n", " ")
            shown = Shown(
                slug=stored["slug"],
                title=stored["title"],
                category=stored["category"],
                summary=stored["meta"].get("summary") or "",
                text=text,
                folded_title=fold(stored["title"]),
                folded=fold(text),
            )
            self._shown[docnum] = shown
            if len(self._shown) > CACHED_TEXTS:
                self._seen.pop(self._shown.popitem(last=False)[0], None)
        else:
            self._shown.move_to_end(docnum)
        return shown


def _showing(
    shown: Shown, stems: set[str], index: StemIndex | None, title_index: StemIndex | None
) -> tuple[str, str]:
    """An article's title with the query's words highlighted, and its snippet."""
    return (
        highlight_all(shown.title, stems, shown.folded_title, title_index),
        snippet(shown.text, stems, shown.folded, index)
        or escape(shown.summary or shown.text[:SNIPPET_CHARS]),
    )
