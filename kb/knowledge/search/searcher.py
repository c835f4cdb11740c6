"""One search behind the pages, the JSON API and the CLI: French queries over one generation."""

from __future__ import annotations

import functools
import heapq
import json
import math
import os
import re
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from whoosh import index as whoosh_index
from whoosh.searching import Searcher

from kb.errors import BadRequest, KbError
from kb.knowledge.search.analysis import BUILTIN_SYNONYMS, Synonyms, fold, is_stop, words
from kb.knowledge.search.indexer import (
    CURRENT,
    IndexCorrupt,
    current_generation,
    read_meta,
    verify_files,
)
from kb.knowledge.search.planner import Plan, Planner, Vocabulary
from kb.knowledge.search.scoring import ScoreCache, rank
from kb.knowledge.search.snippets import (
    SNIPPET_CHARS,
    StemIndex,
    highlight_all,
    snippet,
    stem_index,
)

MAX_QUERY_CHARS = 500
MAX_WORDS = 32
PER_PAGE_MAX = 50
RESULTS_CACHED = 4096
# The long tail of a query (one common word in passing) is noise, not an answer.
RELATIVE_FLOOR = 0.1
# Articles whose text, folded for snippets, stays in memory (per snapshot).
CACHED_TEXTS = 1024
_TOKEN_RE = re.compile(r"\w+")
BROKEN_SECONDS = 5.0  # a generation that failed to open is tried again after this long


def _keep(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    if len(cache) > RESULTS_CACHED:
        cache.popitem(last=False)


class IndexMissing(KbError):
    status = 503
    code = "index_absent"


@dataclass(frozen=True)
class Hit:
    slug: str
    title: str
    title_html: str
    category: str
    url: str
    snippet: str  # HTML: escaped text with <mark> around the matched words
    score: float

    def as_json(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "title": self.title,
            "category": self.category,
            "url": self.url,
            "snippet": self.snippet,
            "score": round(self.score, 4),
        }


# A hit as it is kept: (slug, title, title_html, category, url, snippet, score). A worker
# keeps thousands of answers; plain tuples of strings and numbers are objects the garbage
# collector stops visiting, where a Hit each would be visited at every full collection.
HitRow = tuple[str, str, str, str, str, str, float]


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Ranking:
    """One page of results of a plan: what the queries typed differently but planned alike
    ("mot de", "Mot  de", "mot") share."""

    total: int
    rows: tuple[HitRow, ...]
    facets: dict[str, int]
    # No result answers every word of the query: found something, but perhaps not the answer.
    weak: bool = False

    @functools.cached_property
    def json_part(self) -> bytes:
        """`"results":[…],"facets":{…}`, encoded once for every query of this plan."""
        results = [Hit(*row).as_json() for row in self.rows]
        return _dumps({"results": results, "facets": self.facets})[1:-1]


@dataclass(frozen=True)
class SearchResults:
    query: str
    total: int
    page: int
    per_page: int
    rows: tuple[HitRow, ...]
    facets: dict[str, int]
    suggestion: str | None = None
    category: str | None = None
    empty_query: bool = False
    ranking: Ranking | None = field(default=None, repr=False, compare=False)

    @property
    def hits(self) -> list[Hit]:
        return [Hit(*row) for row in self.rows]

    @property
    def weak(self) -> bool:
        """Results, but none answering every word of the query (see Ranking.weak)."""
        return self.ranking is not None and self.ranking.weak

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @functools.cached_property
    def json_bytes(self) -> bytes:
        """The API's answer, encoded once: kept answers are sent again as they are, and the
        results of a plan are encoded once for all its queries."""
        if self.ranking is None:
            return _dumps(self.as_json())
        head = _dumps(
            {"query": self.query, "total": self.total, "page": self.page, "per_page": self.per_page}
        )
        tail = b',"suggestion":' + _dumps(self.suggestion) + b"}"
        return head[:-1] + b"," + self.ranking.json_part + tail

    def as_json(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "total": self.total,
            "page": self.page,
            "per_page": self.per_page,
            "results": [h.as_json() for h in self.hits],
            "facets": self.facets,
            "suggestion": self.suggestion,
        }


@dataclass(frozen=True)
class IndexedArticlePage:
    """An article as the index stored it: what its page shows."""

    slug: str
    title: str
    category: str
    html: str
    text: str
    summary: str
    headings: list[tuple[int, str, str]]
    updated: str | None
    related: list[str]
    aliases: list[str]
    draft: bool
    url: str


@dataclass(frozen=True)
class _Shown:
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


class Snapshot:
    """One index generation, opened once and shared; searches are serialised by a lock."""

    def __init__(self, generation: Path) -> None:
        self.generation = generation
        self.meta = read_meta(generation)
        verify_files(generation, self.meta)
        self._index = whoosh_index.open_dir(str(generation))
        self._searcher: Searcher = self._index.searcher()
        self._reader = self._searcher.reader()
        self._lock = threading.Lock()
        self.synonyms = Synonyms.from_groups(
            list(BUILTIN_SYNONYMS) + [tuple(g) for g in self.meta.get("synonyms", [])]
        )
        self.categories: list[dict[str, Any]] = self.meta["categories"]
        self.listing: list[dict[str, Any]] = self.meta["articles"]
        self.aliases: dict[str, str] = self.meta.get("aliases", {})
        self._by_slug = {a["slug"]: a for a in self.listing}
        # docnum -> slug and category, to sort, filter and count without reading stored fields.
        self._slug_of: dict[int, str] = {}
        self._category_at: list[str] = [""] * self._reader.doc_count_all()
        self._drafts: set[int] = set()
        for docnum, stored in self._reader.iter_docs():
            self._slug_of[docnum] = stored["slug"]
            self._category_at[docnum] = stored["category"]
            if stored["meta"].get("draft"):
                self._drafts.add(docnum)
        self._scores = ScoreCache(self._reader)
        self._planner = Planner(
            self.synonyms, Vocabulary(self._reader), lambda s: bool(self._scores.stem(s))
        )
        self._shown: OrderedDict[int, _Shown] = OrderedDict()
        self._similar: dict[str, list[str]] = {}
        # Popular queries and the prefixes typed on the way to them come back all day: their
        # answers are kept for this generation (a new build opens a new snapshot).
        self._results: OrderedDict[tuple[Any, ...], SearchResults] = OrderedDict()
        # And a query typed for the first time often plans like an earlier one ("mot de" is
        # "mot"): its page of results is kept by plan.
        self._rankings: OrderedDict[tuple[Any, ...], Ranking] = OrderedDict()

    def close(self) -> None:
        self._searcher.close()
        self._index.close()

    # --- search ---------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        category: str | None = None,
        page: int = 1,
        per_page: int = 10,
        prefix: bool = False,
        drafts: bool = False,
    ) -> SearchResults:
        """Ranked, highlighted results; `prefix` matches the last word as typed so far."""
        # The limit applies to what was sent, as /api/openapi.json says: before any trimming.
        if len(query or "") > MAX_QUERY_CHARS:
            raise BadRequest(
                f"La recherche est trop longue : {MAX_QUERY_CHARS} caractères au plus."
            )
        query = (query or "").strip()
        if page < 1 or not 1 <= per_page <= PER_PAGE_MAX:
            raise BadRequest(f"Page à partir de 1, et de 1 à {PER_PAGE_MAX} résultats par page.")
        if category is not None and category not in {c["slug"] for c in self.categories}:
            raise BadRequest(f"Catégorie inconnue : « {category} ».")
        as_prefix = prefix and not query[-1:].isspace()
        key = (query, category, page, per_page, as_prefix, drafts)
        with self._lock:
            cached = self._results.get(key)
            if cached is not None:
                self._results.move_to_end(key)
                return cached
            folded = words(query)[:MAX_WORDS]
            results = self._search(query, folded, category, page, per_page, as_prefix, drafts)
            _keep(self._results, key, results)
            return results

    def _search(
        self,
        query: str,
        folded: list[str],
        category: str | None,
        page: int,
        per_page: int,
        as_prefix: bool,
        drafts: bool,
    ) -> SearchResults:
        """The search itself, under the snapshot's lock."""
        plan = self._planner.plan(folded, prefix=as_prefix)
        if not plan.units:
            suggestion = self._suggestion(query, folded, plan)
            nothing = not any(not is_stop(w) for w in folded)
            return SearchResults(query, 0, page, per_page, (), {}, suggestion, category, nothing)
        key = (tuple(u.key for u in plan.units), category, page, per_page, drafts)
        ranking = self._rankings.get(key)
        if ranking is None:
            ranking = self._rank(plan, category, page, per_page, drafts)
            _keep(self._rankings, key, ranking)
        else:
            self._rankings.move_to_end(key)
        suggestion = self._suggestion(query, folded, plan) if ranking.total < 3 else None
        return SearchResults(
            query, ranking.total, page, per_page, ranking.rows, ranking.facets, suggestion,
            category, ranking=ranking,
        )  # fmt: skip

    def _rank(
        self, plan: Plan, category: str | None, page: int, per_page: int, drafts: bool
    ) -> Ranking:
        """The page of results of a plan (its units are all it depends on)."""
        raw, coordination = rank(plan.units, self._scores)
        if self._drafts and not drafts:
            raw = {d: s for d, s in raw.items() if d not in self._drafts}
        # Coordination orders the results; what is kept depends on the words' own scores.
        floor = max(raw.values(), default=0.0) * RELATIVE_FLOOR
        scored = [(coordination(d, s), d) for d, s in raw.items() if s >= floor]
        facets = Counter(map(self._category_at.__getitem__, (d for _, d in scored)))
        if category is not None:
            scored = [(s, d) for s, d in scored if self._category_at[d] == category]
        start = (page - 1) * per_page
        shown = self._first(scored, start + per_page)[start:]
        rows = tuple(self._hit(d, s, plan.stems) for s, d in shown)
        ordered = {c["slug"]: facets[c["slug"]] for c in self.categories if facets[c["slug"]]}
        answered = coordination.answered
        weak = (
            bool(scored)
            and answered is not None
            and (max(answered[d] for _, d in scored) < coordination.size)
        )
        return Ranking(len(scored), rows, ordered, weak)

    def _first(self, scored: list[tuple[float, int]], count: int) -> list[tuple[float, int]]:
        """The `count` best, equal scores in the order of their slugs (a stable order)."""

        def order(sd: tuple[float, int]) -> tuple[float, str]:
            return -round(sd[0], 6), self._slug_of[sd[1]]

        if len(scored) > 4 * count:
            # Only what can reach the page is sorted: the best, and whatever ties with them.
            edge = heapq.nlargest(count, scored)[-1][0] - 1e-6
            scored = [sd for sd in scored if sd[0] >= edge]
        return sorted(scored, key=order)[:count]

    def suggest(self, query: str, limit: int = 8) -> list[dict[str, str]]:
        """Titles to complete what is being typed."""
        results = self.search(query, prefix=True, per_page=limit)
        return [
            {"slug": h.slug, "title": h.title, "url": h.url, "category": h.category}
            for h in results.hits
        ]

    def _suggestion(self, query: str, folded: list[str], plan: Plan) -> str | None:
        """The query with its unknown words corrected: "Essayez avec : …"."""
        if not plan.corrections:
            return None
        tokens = list(_TOKEN_RE.finditer(query))
        if len(tokens) < len(folded):
            return None
        out, last = [], 0
        for position, correction in sorted(plan.corrections.items()):
            match = tokens[position]
            out.append(query[last : match.start()])
            out.append(correction)
            last = match.end()
        out.append(query[last:])
        suggestion = "".join(out)
        return suggestion if suggestion != query else None

    # --- hits and snippets ----------------------------------------------------------------

    def _hit(self, docnum: int, score: float, stems: set[str]) -> HitRow:
        shown = self._shown_of(docnum)
        passage = snippet(shown.text, stems, shown.folded)
        return (
            shown.slug,
            shown.title,
            highlight_all(shown.title, stems, shown.folded_title),
            shown.category,
            f"/articles/{shown.slug}",
            passage or escape(shown.summary or shown.text[:SNIPPET_CHARS]),
            score,
        )

    def _shown_of(self, docnum: int) -> _Shown:
        shown = self._shown.get(docnum)
        if shown is None:
            stored = self._reader.stored_fields(docnum)
            text = stored["text"].replace("\n", " ")
            shown = _Shown(
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
                self._shown.popitem(last=False)
        else:
            self._shown.move_to_end(docnum)
        return shown

    # --- articles -------------------------------------------------------------------------

    def article(self, slug: str, drafts: bool = False) -> IndexedArticlePage | None:
        with self._lock:
            docnum = self._searcher.document_number(slug=slug)
            if docnum is None or (docnum in self._drafts and not drafts):
                return None
            stored = self._reader.stored_fields(docnum)
        meta = stored["meta"]
        return IndexedArticlePage(
            slug=stored["slug"],
            title=stored["title"],
            category=stored["category"],
            html=stored["html"],
            text=stored["text"],
            summary=meta.get("summary", ""),
            headings=[tuple(h) for h in meta.get("headings", [])],
            updated=meta.get("updated"),
            related=meta.get("related", []),
            aliases=meta.get("aliases", []),
            draft=bool(meta.get("draft")),
            url=f"/articles/{stored['slug']}",
        )

    def listing_of(self, slug: str) -> dict[str, Any] | None:
        return self._by_slug.get(slug)

    def articles_in(self, category: str, drafts: bool = False) -> list[dict[str, Any]]:
        """A category's articles in the editors' order, then by title."""
        return sorted(
            (a for a in self.listing if a["category"] == category and (drafts or not a["draft"])),
            key=lambda a: (a["order"] if a["order"] is not None else 10_000, fold(a["title"])),
        )

    def similar(self, slug: str, limit: int = 5) -> list[str]:
        """Articles that share the most distinctive words with this one."""
        if slug not in self._similar:
            with self._lock:
                docnum = self._searcher.document_number(slug=slug)
                found: list[str] = []
                if docnum is not None:
                    stored = self._reader.stored_fields(docnum)
                    text = " ".join((stored["title"], stored["title"], stored["text"]))
                    hits = self._searcher.more_like(
                        docnum, "body", text=text, top=limit + 5, numterms=12
                    )
                    found = [h["slug"] for h in hits if h.docnum not in self._drafts][:limit]
            self._similar[slug] = found
        return self._similar[slug]


class SearchIndex:
    """The live generation of an index folder, reopened when a build switches it."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._broken: tuple[Path, float, IndexCorrupt] | None = None
        self._seen: tuple[int, int, int] | None = None

    def snapshot(self) -> Snapshot:
        # A build replaces CURRENT (a new inode): one stat per request tells whether to look.
        try:
            stat = os.stat(self.index_dir / CURRENT)
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
