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
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from threading import Lock

from whoosh.reading import IndexReader

from kb.search.schema import RANKED_FIELDS

# Whoosh's BM25F defaults, which the index's scores have always used.
K1 = 1.2
B = 0.75
# An article answering m of n units keeps (m/n) ** COORDINATION of its score.
COORDINATION = 2.0
# Stems whose scores stay in memory, per snapshot: the help center's working vocabulary.
CACHED_STEMS = 4096


@dataclass(frozen=True)
class Alternative:
    """One way to answer a unit: all of `stems`, scored at `weight`."""

    stems: tuple[str, ...]
    weight: float


@dataclass(frozen=True)
class Unit:
    """What one word (or one expression) of the query asks for."""

    alternatives: tuple[Alternative, ...]
    size: int = 1  # the query's content words it stands for


class StemScores:
    """Per snapshot: a stem -> {docnum: its BM25 score summed over the weighted fields}.

    Read from the postings on first use and kept (a bounded LRU): a snapshot never changes.
    """

    def __init__(self, reader: IndexReader, capacity: int = CACHED_STEMS) -> None:
        self._reader = reader
        self._count = reader.doc_count_all()
        self._average = {
            name: (reader.field_length(name) / self._count if self._count else 0.0) or 1.0
            for name, _ in RANKED_FIELDS
        }
        self._lengths: dict[str, list[int]] = {}
        self._cache: OrderedDict[str, dict[int, float]] = OrderedDict()
        self._capacity = capacity
        self._lock = Lock()

    def __call__(self, stem: str) -> dict[int, float]:
        with self._lock:
            scores = self._cache.get(stem)
            if scores is not None:
                self._cache.move_to_end(stem)
                return scores
        scores = self._read(stem)
        with self._lock:
            self._cache[stem] = scores
            if len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
        return scores

    def _read(self, stem: str) -> dict[int, float]:
        reader = self._reader
        scores: dict[int, float] = {}
        for name, weight in RANKED_FIELDS:
            frequency = reader.doc_frequency(name, stem)
            if not frequency:
                continue
            # Whoosh's idf and bm25(), so that the scores are those Whoosh would give.
            idf = math.log(self._count / (frequency + 1)) + 1.0
            lengths = self._field_lengths(name)
            average = self._average[name]
            norm = K1 * (1 - B)
            slope = K1 * B / average
            postings = reader.postings(name, stem)
            while postings.is_active():
                docnum = postings.id()
                tf = postings.weight()
                score = weight * idf * tf * (K1 + 1) / (tf + norm + slope * lengths[docnum])
                scores[docnum] = scores.get(docnum, 0.0) + score
                postings.next()
        return scores

    def _field_lengths(self, name: str) -> list[int]:
        lengths = self._lengths.get(name)
        if lengths is None:
            field_length = self._reader.doc_field_length
            lengths = [field_length(d, name, 0) for d in range(self._count)]
            self._lengths[name] = lengths
        return lengths


def unit_scores(unit: Unit, stem_scores: StemScores) -> dict[int, float]:
    """docnum -> the score of its best alternative (documents holding all of its stems)."""
    best: dict[int, float] = {}
    for alternative in unit.alternatives:
        # An expression of two words counts as the unit's size, whatever its own length.
        factor = alternative.weight * unit.size / len(alternative.stems)
        scored = _all_of([stem_scores(s) for s in alternative.stems])
        if not best and factor == 1.0:
            best = dict(scored)
            continue
        for docnum, score in scored.items():
            score *= factor
            if score > best.get(docnum, 0.0):
                best[docnum] = score
    return best


def _all_of(tables: Sequence[dict[int, float]]) -> dict[int, float]:
    if len(tables) == 1:
        return tables[0]
    smallest = min(tables, key=len)
    return {
        docnum: sum(t[docnum] for t in tables)
        for docnum in smallest
        if all(docnum in t for t in tables)
    }


def rank(units: Sequence[Unit], stem_scores: StemScores) -> dict[int, tuple[float, float]]:
    """docnum -> (score, score before coordination) of every document answering a unit."""
    totals: dict[int, float] = {}
    answered: dict[int, int] = {}
    for unit in units:
        for docnum, score in unit_scores(unit, stem_scores).items():
            totals[docnum] = totals.get(docnum, 0.0) + score
            answered[docnum] = answered.get(docnum, 0) + unit.size
    size = sum(u.size for u in units)
    return {d: (s * (answered[d] / size) ** COORDINATION, s) for d, s in totals.items()}
