"""One search behind the pages, the JSON API and the CLI: French queries over one generation."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray
from whoosh import index as whoosh_index
from whoosh.searching import Searcher

from kb.errors import BadRequest
from kb.knowledge.search.analysis import BUILTIN_SYNONYMS, Synonyms, is_stop, words
from kb.knowledge.search.articles import Articles, IndexedArticlePage
from kb.knowledge.search.indexer import read_meta
from kb.knowledge.search.integrity import verify_files
from kb.knowledge.search.planner import Plan, Planner, Vocabulary
from kb.knowledge.search.results import Hit, HitRow, Ranking, SearchResults
from kb.knowledge.search.scoring import Ranked, ScoreCache, rank
from kb.knowledge.search.shown import ShownTexts

__all__ = ["Hit", "HitRow", "SearchResults", "Snapshot"]

MAX_QUERY_CHARS = 500
MAX_WORDS = 32
PER_PAGE_MAX = 50
RESULTS_CACHED = 4096
# The long tail of a query (one common word in passing) is noise, not an answer.
RELATIVE_FLOOR = 0.1
_TOKEN_RE = re.compile(r"\w+")
K = TypeVar("K")
V = TypeVar("V")
Suggestion = tuple[str, str, str, str]  # slug, title, url, category


def _documents(reader: Any) -> tuple[dict[int, str], list[str], set[int]]:
    """Each live document's slug and category by number, and the drafts' numbers: from the
    columns and the postings of `draft`. Unpickling every document's stored fields instead took
    a second at 20,000 articles, in the first request to find a new generation."""
    slug_of: dict[int, str] = {}
    category_at = [""] * reader.doc_count_all()
    for segment, base in reader.leaf_readers():
        if not (segment.has_column("slug") and segment.has_column("category")):
            return _documents_stored(reader)  # written before the columns (schema 6)
        slugs = list(segment.column_reader("slug", translate=False))
        categories = list(segment.column_reader("category", translate=False))
        live = segment.all_doc_ids() if segment.has_deletions() else range(len(slugs))
        for docnum in live:
            slug_of[base + docnum] = slugs[docnum].decode()
            category_at[base + docnum] = categories[docnum].decode()
    drafts = set()
    if reader.doc_frequency("draft", "1"):
        drafts = {d for d in reader.postings("draft", "1").all_ids() if d in slug_of}
    return slug_of, category_at, drafts


def _documents_stored(reader: Any) -> tuple[dict[int, str], list[str], set[int]]:
    """The same, read from the stored fields of each document."""
    slug_of: dict[int, str] = {}
    category_at = [""] * reader.doc_count_all()
    drafts = set()
    for docnum, stored in reader.iter_docs():
        slug_of[docnum] = stored["slug"]
        category_at[docnum] = stored["category"]
        if stored["meta"].get("draft"):
            drafts.add(docnum)
    return slug_of, category_at, drafts


class Kept(Generic[K, V]):
    """The most recent answers, each kept from the second time it is asked for.

    A query comes once far more often than twice (the long tail of a help center), and an
    answer kept for nothing evicted one that would have come back, after its objects were
    made, kept, visited by the garbage collector and freed. As TinyLFU's doorkeeper does, the
    first time a key is only noted (its hash, in a set emptied when it holds four times what
    is kept); the second time, its answer is kept. bench.http in turn, 231 articles: never-seen
    searches 0.32 -> 0.34 of the ceiling (0.42 -> 0.39 ms of CPU a request), suggestions
    0.43 -> 0.46; popular queries 0.70 -> 0.69, the same CPU: they pay for their second time
    (in process 77, 78 -> 83, 86 µs a request) and are kept from then on (bench/README.md).
    Not thread-safe: its snapshot calls it under its lock."""

    def __init__(self, size: int = RESULTS_CACHED) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._size = size
        self._noted: set[int] = set()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def keep(self, key: K, value: V) -> None:
        noted = hash(key)
        if noted not in self._noted:
            if len(self._noted) >= 4 * self._size:
                self._noted.clear()
            self._noted.add(noted)
            return
        self._items[key] = value
        if len(self._items) > self._size:
            self._items.popitem(last=False)


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
        # docnum -> slug and category, to sort, filter and count without reading stored fields.
        self._slug_of, self._category_at, self._drafts = _documents(self._reader)
        self._scores = ScoreCache(self._reader)
        # docnum -> the category's place in self.categories (len(categories) for none), and
        # the drafts: to count, filter and leave out a whole table of scores at a time.
        self._place = {c["slug"]: i for i, c in enumerate(self.categories)}
        self._category_number = np.array(
            [self._place.get(c, len(self._place)) for c in self._category_at], dtype=np.intp
        )
        self._draft_mask = np.zeros(len(self._category_at), dtype=bool)
        self._draft_mask[list(self._drafts)] = True
        # docnum -> its slug's place among all slugs: equal scores are shown in slug order.
        self._slug_rank = np.zeros(len(self._category_at), dtype=np.intp)
        by_slug = sorted(self._slug_of, key=self._slug_of.__getitem__)
        self._slug_rank[by_slug] = np.arange(len(by_slug), dtype=np.intp)
        self._planner = Planner(self.synonyms, Vocabulary(self._reader), self._scores.indexed)
        self._texts = ShownTexts(self._reader)
        self._articles = Articles(self._searcher, self.listing, self._drafts, self._lock)
        # Popular queries and the prefixes typed on the way to them come back all day: their
        # answers are kept for this generation (a new build opens a new snapshot).
        self._results: Kept[tuple[Any, ...], SearchResults] = Kept()
        # And a query typed for the first time often plans like an earlier one ("mot de" is
        # "mot"): its page of results is kept by plan.
        self._rankings: Kept[tuple[Any, ...], Ranking] = Kept()
        self._suggested: Kept[tuple[str, int], tuple[Suggestion, ...]] = Kept()
        self._suggested_plans: Kept[tuple[Any, ...], tuple[Suggestion, ...]] = Kept()

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
                return cached
            folded = words(query)[:MAX_WORDS]
            results = self._search(query, folded, category, page, per_page, as_prefix, drafts)
            self._results.keep(key, results)
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
            self._rankings.keep(key, ranking)
        suggestion = self._suggestion(query, folded, plan) if ranking.total < 3 else None
        return SearchResults(
            query, ranking.total, page, per_page, ranking.rows, ranking.facets, suggestion,
            category, ranking=ranking,
        )  # fmt: skip

    def _rank(
        self, plan: Plan, category: str | None, page: int, per_page: int, drafts: bool
    ) -> Ranking:
        """The page of results of a plan (its units are all it depends on)."""
        ranked = self._ranked(plan, drafts)
        numbers = self._category_number[ranked.docnums]
        counts = np.bincount(numbers, minlength=len(self.categories) + 1).tolist()
        ordered = {c["slug"]: counts[i] for i, c in enumerate(self.categories) if counts[i]}
        docnums, scores, kept = ranked.docnums, ranked.scores, None
        if category is not None:
            kept = numbers == self._place[category]
            docnums, scores = docnums[kept], scores[kept]
        start = (page - 1) * per_page
        shown = self._first(docnums, scores, start + per_page)[start:]
        rows = tuple(self._texts.hit(d, s, plan.stems) for s, d in shown)
        return Ranking(len(docnums), rows, ordered, ranked.weak(kept))

    def _ranked(self, plan: Plan, drafts: bool) -> Ranked:
        """Every result of a plan, with its score."""
        excluded = self._draft_mask if self._drafts and not drafts else None
        return rank(plan.units, self._scores, RELATIVE_FLOOR, excluded)

    def _first(
        self, docnums: NDArray[np.intp], scores: NDArray[np.float64], count: int
    ) -> list[tuple[float, int]]:
        """The `count` best (score, document), equal scores in the order of their slugs (a
        stable order)."""

        if len(scores) > 4 * count:
            # Only what can reach the page is sorted: the best, and whatever ties with them.
            edge = np.partition(scores, len(scores) - count)[len(scores) - count] - 1e-6
            near = scores >= edge
            docnums, scores = docnums[near], scores[near]
        # By score to the sixth decimal (equal scores tie), then by slug: in NumPy, 5 µs for
        # 5 to 120 results, where a sort key made in Python for each took 5 to 62 µs.
        chosen = np.lexsort((self._slug_rank[docnums], -np.round(scores, 6)))[:count]
        return list(zip(scores[chosen].tolist(), docnums[chosen].tolist(), strict=True))

    def suggest(self, query: str, limit: int = 8) -> list[dict[str, str]]:
        """Titles to complete what is being typed: the first results of the search as typed,
        without what only a page of results shows (snippets, highlights, facets), which was
        two fifths of a suggestion's time at 5,000 articles."""
        if len(query or "") > MAX_QUERY_CHARS:
            raise BadRequest(
                f"La recherche est trop longue : {MAX_QUERY_CHARS} caractères au plus."
            )
        if not 1 <= limit <= PER_PAGE_MAX:
            raise BadRequest(f"Page à partir de 1, et de 1 à {PER_PAGE_MAX} résultats par page.")
        query = (query or "").strip()
        key = (query, limit)
        with self._lock:
            rows = self._suggested.get(key)
            if rows is None:
                rows = self._suggest(query, limit)
                self._suggested.keep(key, rows)
        return [{"slug": s, "title": t, "url": u, "category": c} for s, t, u, c in rows]

    def _suggest(self, query: str, limit: int) -> tuple[Suggestion, ...]:
        """Under the snapshot's lock: (slug, title, url, category) of the first results."""
        as_prefix = not query[-1:].isspace()
        page = self._results.get((query, None, 1, limit, as_prefix, False))
        if page is None:  # not searched yet: ranked alone
            plan = self._planner.plan(words(query)[:MAX_WORDS], prefix=as_prefix)
            if not plan.units:
                return ()
            planned = (tuple(u.key for u in plan.units), None, 1, limit, False)
            ranking = self._rankings.get(planned)
            if ranking is None:  # as pages are, kept by plan: "mot de" plans as "mot"
                rows = self._suggested_plans.get(planned)
                if rows is None:
                    ranked = self._ranked(plan, False)
                    first = self._first(ranked.docnums, ranked.scores, limit)
                    rows = tuple(self._suggestion_of(d) for _, d in first)
                    self._suggested_plans.keep(planned, rows)
                return rows
            page_rows = ranking.rows
        else:
            page_rows = page.rows
        return tuple((row[0], row[1], row[4], row[3]) for row in page_rows)

    def _suggestion_of(self, docnum: int) -> Suggestion:
        slug = self._slug_of[docnum]
        listed = self._articles.listing_of(slug)
        title = listed["title"] if listed else self._texts.shown(docnum).title
        return slug, title, f"/articles/{slug}", self._category_at[docnum]

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

    # --- articles -------------------------------------------------------------------------

    def article(self, slug: str, drafts: bool = False) -> IndexedArticlePage | None:
        return self._articles.article(slug, drafts)

    def listing_of(self, slug: str) -> dict[str, Any] | None:
        return self._articles.listing_of(slug)

    def articles_in(self, category: str, drafts: bool = False) -> list[dict[str, Any]]:
        """A category's articles in the editors' order, then by title."""
        return self._articles.articles_in(category, drafts)

    def similar(self, slug: str, limit: int = 5) -> list[str]:
        """Articles that share the most distinctive words with this one."""
        return self._articles.similar(slug, limit)
