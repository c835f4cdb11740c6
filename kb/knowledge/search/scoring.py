"""Ranking: BM25 over the weighted fields, one score per query unit, coordination of units.

A query is a list of units (a word, or an expression and its synonyms), each a set of
alternatives (the word, its corrections, its completions; or each synonym). A document's
score for a unit is that of its best alternative, never the sum: an article that says
"code UAI", "UAI" and "RNE" answers the unit once, not three times. Units add up, and the sum
is scaled by the share of units the article answers, so that an article answering the whole
question comes before one that repeats a single word of it.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, Generic, TypeVar

from whoosh.reading import IndexReader, TermNotFound

from kb.knowledge.search.schema import RANKED_FIELDS

# Whoosh's BM25F defaults, which the index's scores have always used.
K1 = 1.2
B = 0.75
# An article answering m of n units keeps (m/n) ** COORDINATION of its score.
COORDINATION = 2.0
# The folded words as typed, unstemmed: "pass culture" is not "mot de passe".
EXACT_FIELD = "spell"
EXACT = 1.0
# Scores kept in memory per snapshot, counted in (document, score) pairs: about 80 bytes each.
CACHED_STEM_SCORES = 400_000
CACHED_UNIT_SCORES = 200_000

Scores = dict[int, float]  # docnum -> score
K = TypeVar("K")


@dataclass(frozen=True)
class Alternative:
    """One way to answer a unit: all of `stems`, scored at `weight`."""

    stems: tuple[str, ...]
    weight: float
    exact: tuple[str, ...] = ()  # the words as typed, when this is what was typed


@dataclass(frozen=True)
class Unit:
    """What one word (or one expression) of the query asks for."""

    alternatives: tuple[Alternative, ...]
    size: int = 1  # the query's content words it stands for

    @property
    def key(self) -> tuple[Any, ...]:
        """The unit as plain tuples of strings and numbers: kept as a cache key, it is an
        object the garbage collector stops visiting (a Unit it would visit every time)."""
        return tuple((a.stems, a.weight, a.exact) for a in self.alternatives), self.size


class ScoreCache:
    """Per snapshot: the scores of stems, of words as typed and of units, by document.

    Read from the postings on first use and kept (bounded LRUs): a snapshot never changes.
    Callers hold the snapshot's lock.
    """

    def __init__(self, reader: IndexReader) -> None:
        self._reader = reader
        self._count = reader.doc_count_all()
        self._average = {
            name: (reader.field_length(name) / self._count if self._count else 0.0) or 1.0
            for name in (*(n for n, _ in RANKED_FIELDS), EXACT_FIELD)
        }
        self._lengths: dict[str, list[int]] = {}
        self._deleted = frozenset(range(self._count)) - frozenset(reader.all_doc_ids())
        self._terms: _Lru[tuple[str, str]] = _Lru(CACHED_STEM_SCORES)
        self._units: _Lru[tuple[Any, ...]] = _Lru(CACHED_UNIT_SCORES)

    def stem(self, stem: str) -> Scores:
        """docnum -> score of the stem over the ranked fields."""
        return self._term(RANKED_FIELDS, stem)

    def exact(self, word: str) -> Scores:
        """docnum -> score of the word as typed (folded, not stemmed)."""
        return self._term(((EXACT_FIELD, 1.0),), word)

    def unit(self, unit: Unit) -> Scores:
        """docnum -> score of the unit (as you type, the first words' units come back)."""
        key = unit.key
        scores = self._units.get(key)
        if scores is None:
            scores = self._units.put(key, _unit_scores(unit, self))
        return scores

    def _term(self, fields: tuple[tuple[str, float], ...], text: str) -> Scores:
        key = (fields[0][0], text)
        scores = self._terms.get(key)
        if scores is None:
            scores = self._terms.put(key, self._read(fields, text))
        return scores

    def _read(self, fields: tuple[tuple[str, float], ...], text: str) -> Scores:
        """BM25 in each field (Whoosh's idf, K1 and B), weighted by field and summed."""
        reader = self._reader
        scores: Scores = {}
        get = scores.get
        deleted = self._deleted
        for name, weight in fields:
            frequency = reader.doc_frequency(name, text)
            if not frequency:
                continue
            idf = math.log(self._count / (frequency + 1)) + 1.0
            lengths = self._field_lengths(name)
            norm = K1 * (1 - B)
            slope = K1 * B / self._average[name]
            boost = weight * idf
            for docnums, tfs in _blocks(reader, name, text):
                pairs: Iterable[tuple[int, int]]
                if deleted:
                    pairs = [
                        (d, tf) for d, tf in zip(docnums, tfs, strict=True) if d not in deleted
                    ]
                else:
                    pairs = zip(docnums, tfs, strict=True)
                for docnum, tf in pairs:
                    score = boost * tf * (K1 + 1) / (tf + norm + slope * lengths[docnum])
                    scores[docnum] = get(docnum, 0.0) + score
        return scores

    def _field_lengths(self, name: str) -> list[int]:
        lengths = self._lengths.get(name)
        if lengths is None:
            field_length = self._reader.doc_field_length
            lengths = [field_length(d, name, 0) for d in range(self._count)]
            self._lengths[name] = lengths
        return lengths


def _blocks(reader: IndexReader, fieldname: str, text: str) -> Iterator[tuple[Any, Any]]:
    """A term's postings, a block at a time: (document numbers, weights), deleted documents
    included. Whoosh's matchers cost two or three method calls a posting (and as many again
    for each segment and for deletions): 12 s of the 12.3 that four prefixes as typed took at
    20,000 articles. The block arrays are W3LeafMatcher's own (Whoosh is pinned to 2.7.4)."""
    for segment, base in reader.leaf_readers():
        try:
            matcher = segment.postings(fieldname, text)
        except TermNotFound:
            continue
        leaf = getattr(matcher, "child", matcher)  # deletions: the caller leaves them out
        while leaf.is_active():
            leaf._read_ids()
            leaf._read_weights()
            docnums = leaf._ids if not base else [d + base for d in leaf._ids]
            yield docnums, leaf._weights
            leaf._next_block()


class _Lru(Generic[K]):
    """The tables used last, within a budget of (document, score) pairs."""

    def __init__(self, budget: int) -> None:
        self._tables: OrderedDict[K, Scores] = OrderedDict()
        self._budget = budget
        self._size = 0

    def get(self, key: K) -> Scores | None:
        scores = self._tables.get(key)
        if scores is not None:
            self._tables.move_to_end(key)
        return scores

    def put(self, key: K, scores: Scores) -> Scores:
        self._tables[key] = scores
        self._size += len(scores)
        while self._size > self._budget and len(self._tables) > 1:
            _, dropped = self._tables.popitem(last=False)
            self._size -= len(dropped)
        return scores


def _unit_scores(unit: Unit, cache: ScoreCache) -> Scores:
    """docnum -> the score of its best alternative (documents holding all of its stems)."""
    best: Scores = {}
    for alternative in unit.alternatives:
        # An expression of two words counts as the unit's size, whatever its own length.
        factor = alternative.weight * unit.size / len(alternative.stems)
        scored = _all_of([cache.stem(s) for s in alternative.stems])
        exact = [cache.exact(w) for w in alternative.exact] if EXACT else []
        if not best and factor == 1.0 and not exact and len(unit.alternatives) == 1:
            return scored  # shared with the cache: never modified
        if exact:
            scored = dict(scored)  # the cache's own table stays as it is
            for table in exact:  # the word as typed is in fewer documents than its stem
                for docnum, score in table.items():
                    if docnum in scored:
                        scored[docnum] += EXACT * score
        if not best:  # BM25 scores and weights are positive: every document is kept
            best = {docnum: score * factor for docnum, score in scored.items()}
            continue
        get = best.get
        for docnum, score in scored.items():
            score *= factor
            if score > get(docnum, 0.0):
                best[docnum] = score
    return best


def _all_of(tables: Sequence[Scores]) -> Scores:
    if len(tables) == 1:
        return tables[0]
    smallest = min(tables, key=len)
    return {
        docnum: sum(t[docnum] for t in tables)
        for docnum in smallest
        if all(docnum in t for t in tables)
    }


def rank(units: Sequence[Unit], cache: ScoreCache) -> tuple[Scores, Coordination]:
    """docnum -> sum of its units' scores, for every document answering one; and what
    scales that sum by the share of the query the document answers."""
    tables = [cache.unit(u) for u in units]
    if len(tables) == 1:
        return tables[0], Coordination(None, 1)
    base = max(range(len(tables)), key=lambda i: len(tables[i]))
    totals = dict(tables[base])
    for i, table in enumerate(tables):
        if i != base:
            get = totals.get
            for docnum, score in table.items():
                totals[docnum] = get(docnum, 0.0) + score
    answered = Counter(
        chain.from_iterable(
            t.keys() for t, u in zip(tables, units, strict=True) for _ in range(u.size)
        )
    )
    return totals, Coordination(answered, sum(u.size for u in units))


@dataclass(frozen=True)
class Coordination:
    answered: Counter[int] | None  # docnum -> units answered, weighted by their size
    size: int  # of the whole query

    def scored(self, raw: Scores, floor: float) -> list[tuple[float, int]]:
        """(coordinated score, document) of those whose own score reaches `floor`: each score
        times (units answered / size) ** COORDINATION, the factors computed once a query."""
        if self.answered is None:
            return [(s, d) for d, s in raw.items() if s >= floor]
        factors = [(k / self.size) ** COORDINATION for k in range(self.size + 1)]
        answered = self.answered
        return [(s * factors[answered[d]], d) for d, s in raw.items() if s >= floor]
