"""One search behind the pages, the JSON API and the CLI: French queries over one generation."""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Any

from whoosh import index as whoosh_index
from whoosh.query import And, Or, Query, Term
from whoosh.searching import Searcher

from kb.errors import BadRequest, KbError
from kb.search.analysis import (
    BUILTIN_SYNONYMS,
    Synonyms,
    fold,
    is_stop,
    stem,
    words,
)
from kb.search.indexer import current_generation, read_meta
from kb.search.schema import RANKED_FIELDS

MAX_QUERY_CHARS = 500
MAX_WORDS = 32
PER_PAGE_MAX = 50
SNIPPET_CHARS = 200
PREFIX_EXPANSIONS = 8
RELATIVE_FLOOR = 0.1
_TOKEN_RE = re.compile(r"\w+")


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


@dataclass(frozen=True)
class SearchResults:
    query: str
    total: int
    page: int
    per_page: int
    hits: list[Hit]
    facets: dict[str, int]
    suggestion: str | None = None
    category: str | None = None
    empty_query: bool = False

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

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


@dataclass
class _Plan:
    """A parsed query: the Whoosh query and the stems to highlight."""

    query: Query | None
    stems: set[str] = field(default_factory=set)
    corrections: dict[int, str] = field(default_factory=dict)  # word position -> correction


class Snapshot:
    """One index generation, opened once and shared; searches are serialised by a lock."""

    def __init__(self, generation: Path) -> None:
        self.generation = generation
        self.meta = read_meta(generation)
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
        self._category_of: dict[int, str] = {}
        self._drafts: set[int] = set()
        for docnum, stored in self._reader.iter_docs():
            self._slug_of[docnum] = stored["slug"]
            self._category_of[docnum] = stored["category"]
            if stored["meta"].get("draft"):
                self._drafts.add(docnum)
        self._corrector = self._searcher.corrector("spell")
        self._similar: dict[str, list[str]] = {}

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
        query = (query or "").strip()
        if len(query) > MAX_QUERY_CHARS:
            raise BadRequest(
                f"La recherche est trop longue : {MAX_QUERY_CHARS} caractères au plus."
            )
        if page < 1 or not 1 <= per_page <= PER_PAGE_MAX:
            raise BadRequest(f"Page à partir de 1, et de 1 à {PER_PAGE_MAX} résultats par page.")
        if category is not None and category not in {c["slug"] for c in self.categories}:
            raise BadRequest(f"Catégorie inconnue : « {category} ».")
        folded = words(query)[:MAX_WORDS]
        with self._lock:
            plan = self._plan(folded, prefix=prefix and not query[-1:].isspace())
            if plan.query is None:
                suggestion = self._suggestion(query, folded, plan)
                nothing = not any(not is_stop(w) for w in folded)
                return SearchResults(
                    query, 0, page, per_page, [], {}, suggestion, category, nothing
                )
            found = self._searcher.search(plan.query, limit=None)
            scored = [
                (score, docnum)
                for score, docnum in found.top_n
                if drafts or docnum not in self._drafts
            ]
            # The long tail of an OR query (one common word in passing) is noise, not an answer.
            floor = max((s for s, _ in scored), default=0.0) * RELATIVE_FLOOR
            scored = [(s, d) for s, d in scored if s >= floor]
            scored.sort(key=lambda sd: (-round(sd[0], 6), self._slug_of[sd[1]]))
            facets = Counter(self._category_of[d] for _, d in scored)
            if category is not None:
                scored = [(s, d) for s, d in scored if self._category_of[d] == category]
            start = (page - 1) * per_page
            hits = [self._hit(d, s, plan.stems) for s, d in scored[start : start + per_page]]
            suggestion = self._suggestion(query, folded, plan) if len(scored) < 3 else None
        ordered = {c["slug"]: facets[c["slug"]] for c in self.categories if facets[c["slug"]]}
        return SearchResults(
            query, len(scored), page, per_page, hits, ordered, suggestion, category
        )

    def suggest(self, query: str, limit: int = 8) -> list[dict[str, str]]:
        """Titles to complete what is being typed."""
        results = self.search(query, prefix=True, per_page=limit)
        return [
            {"slug": h.slug, "title": h.title, "url": h.url, "category": h.category}
            for h in results.hits
        ]

    def _plan(self, folded: list[str], prefix: bool) -> _Plan:
        plan = _Plan(None)
        content = [(i, w) for i, w in enumerate(folded) if not is_stop(w)]
        last = len(folded) - 1
        if prefix and folded and is_stop(folded[-1]) and len(folded[-1]) >= 2:
            content.append((last, folded[-1]))  # "dé" may become "déconnexion"
        stems = [stem(w) for _, w in content]
        units: list[Query] = []
        i = 0
        while i < len(content):
            position, word = content[i]
            matched = self.synonyms.match(stems, i)
            as_prefix = prefix and position == last
            if matched and not as_prefix:
                length, group = matched
                own = tuple(stems[i : i + length])
                alternatives = [
                    self._all_of(alt, 1.0 if alt == own else 0.85, plan)
                    for alt in self.synonyms.groups[group]
                ]
                units.append(_or([a for a in alternatives if a is not None]))
                i += length
                continue
            unit = self._word(position, word, as_prefix, plan)
            if unit is not None:
                units.append(unit)
            i += 1
        units = [u for u in units if u is not None]
        if units:
            plan.query = units[0] if len(units) == 1 else _Union(units, scale=0.9)
        return plan

    def _word(self, position: int, word: str, as_prefix: bool, plan: _Plan) -> Query | None:
        weights: dict[str, float] = {}
        if not is_stop(word):
            weights[stem(word)] = 1.0
        known = self._reader.doc_frequency("spell", word) > 0
        if not known and len(word) >= 4 and not word.isdigit():
            corrections = self._corrections(word)
            if corrections:
                plan.corrections[position] = corrections[0]
            for correction in corrections:
                weights.setdefault(stem(correction), 0.8)
        if as_prefix and len(word) >= 2:
            for expansion in self._expansions(word):
                if not is_stop(expansion):
                    weights.setdefault(stem(expansion), 0.7)
        clauses: list[Query] = []
        for stemmed, weight in weights.items():
            clauses += self._terms(stemmed, weight, plan)
        return _or(clauses)

    def _all_of(self, stems: tuple[str, ...], boost: float, plan: _Plan) -> Query | None:
        clauses = [_or(self._terms(s, boost, plan)) for s in stems]
        if any(c is None for c in clauses):
            return None
        present = [c for c in clauses if c is not None]
        return present[0] if len(present) == 1 else And(present)

    def _terms(self, stemmed: str, boost: float, plan: _Plan) -> list[Query]:
        """The stem in every ranked field where it occurs, weighted by field."""
        clauses: list[Query] = [
            Term(name, stemmed, boost=weight * boost)
            for name, weight in RANKED_FIELDS
            if self._reader.doc_frequency(name, stemmed) > 0
        ]
        if clauses:
            plan.stems.add(stemmed)
        return clauses

    def _corrections(self, word: str) -> list[str]:
        maxdist = 1 if len(word) < 7 else 2
        return list(self._corrector.suggest(word, limit=3, maxdist=maxdist, prefix=1))

    def _expansions(self, word: str) -> list[str]:
        candidates: list[tuple[int, str]] = []
        for n, term in enumerate(self._reader.expand_prefix("spell", word)):
            if n >= 400:
                break
            text = term.decode("utf-8") if isinstance(term, bytes) else term
            candidates.append((-self._reader.doc_frequency("spell", text), text))
        return [t for _, t in sorted(candidates)[:PREFIX_EXPANSIONS]]

    def _suggestion(self, query: str, folded: list[str], plan: _Plan) -> str | None:
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

    def _hit(self, docnum: int, score: float, stems: set[str]) -> Hit:
        stored = self._reader.stored_fields(docnum)
        text = stored["text"].replace("\n", " ")
        meta = stored["meta"]
        snippet = _snippet(text, stems) or escape(meta.get("summary") or text[:SNIPPET_CHARS])
        return Hit(
            slug=stored["slug"],
            title=stored["title"],
            title_html=_highlight_all(stored["title"], stems),
            category=stored["category"],
            url=f"/articles/{stored['slug']}",
            snippet=snippet,
            score=score,
        )

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
            headings=[tuple(h) for h in meta.get("headings", [])],  # type: ignore[misc]
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


class _Union(Or):
    # A binary tree of unions: faster than Whoosh's array matcher on help-center-sized indexes.
    matcher_type = Or.DEFAULT_MATCHER


def _or(clauses: list[Query]) -> Query | None:
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else _Union(clauses)


def _match_spans(text: str, stems: set[str]) -> list[tuple[int, int, str]]:
    """Where the words of `text` stem to one of `stems`: (start, end, stem)."""
    if not stems:
        return []
    folded = fold(text)
    # Stems are (nearly always) prefixes of their words: a regex finds the candidates in C,
    # then stemming confirms each one.
    candidates = _candidates_re(frozenset(s for s in stems if len(s) > 1))
    spans = []
    for match in candidates.finditer(folded):
        word = match.group()
        stemmed = stem(word)
        if stemmed in stems and not is_stop(word):
            spans.append((match.start(), match.end(), stemmed))
    return spans


@lru_cache(maxsize=1024)
def _candidates_re(stems: frozenset[str]) -> re.Pattern[str]:
    if not stems:
        return re.compile(r"(?!)")
    alternation = "|".join(re.escape(s) for s in sorted(stems, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternation})\w*")


def _mark(text: str, spans: Iterable[tuple[int, int, str]], start: int, end: int) -> str:
    out, cursor = [], start
    for s, e, _ in spans:
        if s < start or e > end:
            continue
        out.append(escape(text[cursor:s]))
        out.append(f"<mark>{escape(text[s:e])}</mark>")
        cursor = e
    out.append(escape(text[cursor:end]))
    return "".join(out)


def _highlight_all(text: str, stems: set[str]) -> str:
    return _mark(text, _match_spans(text, stems), 0, len(text))


def _snippet(text: str, stems: set[str]) -> str | None:
    """The passage of about SNIPPET_CHARS that holds the most different matched words."""
    spans = _match_spans(text, stems)
    if not spans:
        return None
    best, best_key = (0, 0), (-1, 0)
    for i, (s, _, _) in enumerate(spans):
        window_end = s + SNIPPET_CHARS - 40
        inside = {st for (ss, ee, st) in spans[i:] if ee <= window_end}
        key = (len(inside), -i)
        if key > best_key:
            best, best_key = (s, i), key
    anchor = best[0]
    start = max(0, anchor - 40)
    if start > 0:
        space = text.rfind(" ", 0, start)
        start = space + 1 if space != -1 and anchor - space < 80 else start
    end = min(len(text), start + SNIPPET_CHARS)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > anchor else end
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    return prefix + _mark(text, spans, start, end).strip() + suffix


class SearchIndex:
    """The live generation of an index folder, reopened when a build switches it."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()

    def snapshot(self) -> Snapshot:
        generation = current_generation(self.index_dir)
        if generation is None:
            raise IndexMissing(
                "L'index de recherche n'est pas encore construit : lancez « kb build »."
            )
        current = self._snapshot
        if current is not None and current.generation == generation:
            return current
        with self._lock:
            if self._snapshot is None or self._snapshot.generation != generation:
                self._snapshot = Snapshot(generation)
                # The previous snapshot is left to the garbage collector: a request may still
                # be reading it, and its files stay readable until then.
            return self._snapshot
