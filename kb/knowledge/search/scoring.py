"""Ranking: BM25 over the weighted fields, one score per query unit, coordination of units.

A query is a list of units (a word, or an expression and its synonyms), each a set of
alternatives (the word, its corrections, its completions; or each synonym). A document's
score for a unit is that of its best alternative, never the sum: an article that says
"code UAI", "UAI" and "RNE" answers the unit once, not three times. Units add up, and the sum
is scaled by the share of units the article answers, so that an article answering the whole
question comes before one that repeats a single word of it.

Scores are tables: a float for every document number of the generation, 0.0 for a document that
does not answer. A term's table is computed from its postings arrays, alternatives, units and the
query's sum are combined a whole table at a time in NumPy, never a document at a time in Python:
at 20,000 articles a query's common words are in thousands of documents each.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray
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
# Scores kept in memory per snapshot, counted in documents' scores (8 bytes each): a table
# holds one for every document of the generation, so that tables add up, compare and combine
# in NumPy, a whole table at a time, never a document at a time in Python. About 32 and 16 MB.
CACHED_STEM_SCORES = 4_000_000
CACHED_UNIT_SCORES = 2_000_000
# Stems known to be indexed or not, a few MB at most.
CACHED_INDEXED = 65_536

# A score for every document number; 0.0 where the document does not answer (BM25 scores are
# positive: idf = log(N / (df + 1)) + 1 > 0). Cached tables are read-only.
Table = NDArray[np.float64]
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
    # The unit as plain tuples of strings and numbers: kept as a cache key, it is an object
    # the garbage collector stops visiting (a Unit it would visit every time). Made once: the
    # search's key and the unit's scores both ask for it.
    key: tuple[Any, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = tuple((a.stems, a.weight, a.exact) for a in self.alternatives), self.size
        object.__setattr__(self, "key", key)


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
        self._lengths: dict[str, Table] = {}
        alive = np.zeros(self._count, dtype=bool)
        alive[list(reader.all_doc_ids())] = True
        self._deleted = None if alive.all() else ~alive
        # Each segment's terms (Whoosh's W3TermsReader) and first document number: a term is
        # looked up once a field and segment, for its frequency and its postings alike (the
        # reader's doc_frequency() and postings() look it up twice, and list the segment's
        # deleted documents at every call).
        self._leaves = [
            (segment._terms, base)
            for segment, base in reader.leaf_readers()
            if getattr(segment, "_terms", None) is not None
        ]
        self._formats = {name: field.format for name, field in reader.schema.items()}
        self._terms: _Lru[tuple[str, str]] = _Lru(CACHED_STEM_SCORES)
        self._units: _Lru[tuple[Any, ...]] = _Lru(CACHED_UNIT_SCORES)
        self._indexed: dict[str, bool] = {}

    def stem(self, stem: str) -> Table:
        """The score of each document for the stem, over the ranked fields."""
        return self._term(RANKED_FIELDS, stem)

    def indexed(self, stem: str) -> bool:
        """Does a document (not deleted) hold the stem in a ranked field? Asked for every
        alternative of every word a query is planned with: the answer is kept (a snapshot never
        changes), not read again from the stem's scores."""
        known = self._indexed.get(stem)
        if known is None:
            if len(self._indexed) >= CACHED_INDEXED:  # words nobody meant: start again
                self._indexed.clear()
            known = self._indexed[stem] = bool(self.stem(stem).any())
        return known

    def exact(self, word: str) -> Table:
        """The score of each document for the word as typed (folded, not stemmed)."""
        return self._term(((EXACT_FIELD, 1.0),), word)

    def unit(self, unit: Unit) -> Table:
        """The score of each document for the unit (as you type, the first words' units come
        back)."""
        key = unit.key
        scores = self._units.get(key)
        if scores is None:
            scores = self._units.put(key, _frozen(_unit_scores(unit, self)))
        return scores

    def _term(self, fields: tuple[tuple[str, float], ...], text: str) -> Table:
        key = (fields[0][0], text)
        scores = self._terms.get(key)
        if scores is None:
            scores = self._terms.put(key, _frozen(self._read(fields, text)))
        return scores

    def _read(self, fields: tuple[tuple[str, float], ...], text: str) -> Table:
        """BM25 in each field (Whoosh's idf, K1 and B), weighted by field and summed: the
        same operations, in the same order, as a document at a time, on whole arrays."""
        term = text.encode("utf-8")
        scores = np.zeros(self._count)
        for name, weight in fields:
            found = []
            for terms, base in self._leaves:
                try:
                    found.append((terms, base, terms.term_info(name, term)))
                except (TermNotFound, KeyError):  # KeyError: a field the segment never saw
                    continue
            frequency = sum(info.doc_frequency() for _, _, info in found)
            if not frequency:
                continue
            idf = math.log(self._count / (frequency + 1)) + 1.0
            norm = K1 * (1 - B)
            slope = K1 * B / self._average[name]
            boost = weight * idf
            docnums, tfs = _postings(found, self._formats[name], name, term)
            lengths = self._field_lengths(name)[docnums]
            # A term's documents are distinct within a field: no two updates of one score.
            scores[docnums] += boost * tfs * (K1 + 1) / (tfs + norm + slope * lengths)
        if self._deleted is not None:
            scores[self._deleted] = 0.0
        return scores

    def _field_lengths(self, name: str) -> Table:
        lengths = self._lengths.get(name)
        if lengths is None:
            field_length = self._reader.doc_field_length
            lengths = np.array(
                [field_length(d, name, 0) for d in range(self._count)], dtype=np.float64
            )
            self._lengths[name] = lengths
        return lengths


def _frozen(table: Table) -> Table:
    """Kept in a cache and shared between queries: nobody may write into it."""
    table.flags.writeable = False
    return table


def _postings(
    found: list[tuple[Any, int, Any]], format_: Any, name: str, term: bytes
) -> tuple[NDArray[np.intp], Table]:
    """A term's postings in one field: document numbers (deleted documents included) and
    weights, from each segment's (terms reader, first document, term information)."""
    ids, weights = [], []
    for terms, base, info in found:
        matcher = terms._codec.postings_reader(terms._postfile, info, format_, term=(name, term))
        for docnums, tfs in _blocks(matcher, base):
            ids.append(docnums)
            weights.append(tfs)
    if len(ids) == 1:
        return ids[0], weights[0]
    return np.concatenate(ids), np.concatenate(weights)


def _blocks(leaf: Any, base: int) -> Iterator[tuple[NDArray[np.intp], Table]]:
    """A segment's postings of a term, a block at a time: (document numbers, weights).
    Whoosh's matchers cost two or three method calls a posting (and as many again for each
    segment and for deletions): 12 s of the 12.3 that four prefixes as typed took at 20,000
    articles. A block is a pickled tuple of (document number deltas, weights), the deltas
    starting from 0 in each block: they are summed in NumPy rather than by Whoosh's generator.
    The attributes are W3LeafMatcher's and W3TermsReader's own (Whoosh is pinned to 2.7.4)."""
    while leaf.is_active():
        if leaf._data is None:
            leaf._read_data()
        deltas, weights = leaf._data[0], leaf._data[1]
        docnums = np.cumsum(np.array(deltas, dtype=np.intp))
        if base:
            docnums += base
        if weights is None or isinstance(weights, float):  # all 1.0, or all the same
            tfs = np.full(len(docnums), 1.0 if weights is None else weights)
        else:
            tfs = np.array(weights, dtype=np.float64)
        yield docnums, tfs
        leaf._next_block()


class _Lru(Generic[K]):
    """The tables used last, within a budget of documents' scores."""

    def __init__(self, budget: int) -> None:
        self._tables: OrderedDict[K, Table] = OrderedDict()
        self._budget = budget
        self._size = 0

    def get(self, key: K) -> Table | None:
        scores = self._tables.get(key)
        if scores is not None:
            self._tables.move_to_end(key)
        return scores

    def put(self, key: K, scores: Table) -> Table:
        self._tables[key] = scores
        self._size += len(scores)
        while self._size > self._budget and len(self._tables) > 1:
            _, dropped = self._tables.popitem(last=False)
            self._size -= len(dropped)
        return scores


def _unit_scores(unit: Unit, cache: ScoreCache) -> Table:
    """Each document's score for its best alternative (documents holding all of its stems)."""
    best: Table | None = None
    for alternative in unit.alternatives:
        # An expression of two words counts as the unit's size, whatever its own length.
        factor = alternative.weight * unit.size / len(alternative.stems)
        scored = _all_of([cache.stem(s) for s in alternative.stems])
        exact = [cache.exact(w) for w in alternative.exact] if EXACT else []
        if best is None and factor == 1.0 and not exact and len(unit.alternatives) == 1:
            return scored  # the cache's own table: never written into
        if exact:  # the word as typed adds to the documents answering the alternative
            answering = scored > 0
            for table in exact:
                scored = scored + np.where(answering, EXACT * table, 0.0)
        # BM25 scores and weights are positive: a document answering keeps a positive score.
        best = scored * factor if best is None else np.maximum(best, scored * factor)
    assert best is not None, "a unit has an alternative"
    return best


def _all_of(tables: Sequence[Table]) -> Table:
    """The sum of the tables, for the documents in all of them."""
    if len(tables) == 1:
        return tables[0]
    total = tables[0] + tables[1]
    everywhere = (tables[0] > 0) & (tables[1] > 0)
    for table in tables[2:]:
        total += table
        everywhere &= table > 0
    return np.where(everywhere, total, 0.0)


@dataclass(frozen=True)
class Ranked:
    """The documents a query keeps, in document order, and their coordinated scores."""

    docnums: NDArray[np.intp]
    scores: Table
    answered: NDArray[np.intp] | None  # units answered (weighted by size), by kept document
    size: int  # of the whole query

    def weak(self, kept: NDArray[np.bool_] | None = None) -> bool:
        """No document (of those `kept`) answers every unit of the query."""
        if self.answered is None:
            return False
        answered = self.answered if kept is None else self.answered[kept]
        return bool(answered.size) and int(np.maximum.reduce(answered)) < self.size


def rank(
    units: Sequence[Unit], cache: ScoreCache, floor: float, excluded: NDArray[np.bool_] | None
) -> Ranked:
    """The documents answering a unit, but those `excluded`, whose sum of units' scores
    reaches `floor` times the best one; ordered by that sum times (units answered / size) **
    COORDINATION: the sum says what is kept, coordination how it is ordered."""
    tables = [cache.unit(u) for u in units]
    raw = tables[0] if len(tables) == 1 else tables[0] + tables[1]
    for table in tables[2:]:
        raw += table
    if excluded is not None:
        raw = np.where(excluded, 0.0, raw)
    # NumPy's reductions called directly, not through their Python wrappers: on tables of a
    # few hundred documents, a wrapper costs about what the operation does.
    top = float(np.maximum.reduce(raw)) if raw.size else 0.0
    if top <= 0.0:
        empty = np.zeros(0, dtype=np.intp)
        return Ranked(empty, np.zeros(0), None, 1)
    docnums = (raw >= top * floor).nonzero()[0]
    scores = raw[docnums]
    if len(tables) == 1:
        return Ranked(docnums, scores, None, 1)
    size = sum(u.size for u in units)
    answered = np.zeros(len(docnums), dtype=np.intp)
    for table, unit in zip(tables, units, strict=True):
        found = table[docnums] > 0
        answered += found if unit.size == 1 else found * unit.size
    return Ranked(docnums, scores * _coordination(size)[answered], answered, size)


@functools.lru_cache(maxsize=64)
def _coordination(size: int) -> Table:
    """The factor of an article answering k units (weighted by size) of `size`, by k."""
    return _frozen(np.array([(k / size) ** COORDINATION for k in range(size + 1)]))
