"""From the words of a query to units: synonyms, corrections of unknown words, completions."""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from rapidfuzz import process
from rapidfuzz.distance import OSA
from whoosh.reading import IndexReader

from kb.knowledge.search.analysis import Synonyms, is_stop, stem
from kb.knowledge.search.scoring import Alternative, Unit

SPELLING_FIELD = "spell"
PREFIX_EXPANSIONS = 8
# And no more completions than these many documents hold between them (the first one always
# counts): at 20,000 articles, the eight most used words after "co" are in 60,000 documents'
# postings, 100 to 150 ms to read the first time; the first two or three are what is typed.
COMPLETION_DOCUMENTS = 20_000
CORRECTIONS = 3
OWN = 1.0  # the word as typed
SYNONYM = 0.85  # another expression of its synonym group
CORRECTION = 0.8  # a known word one or two letters away from an unknown one
COMPLETION = 0.7  # a known word that the word being typed begins
_CACHED_WORDS = 2048


@dataclass
class Plan:
    """A parsed query: its units and the stems to highlight."""

    units: list[Unit] = field(default_factory=list)
    stems: set[str] = field(default_factory=set)
    corrections: dict[int, str] = field(default_factory=dict)  # word position -> correction


class Vocabulary:
    """The folded whole words of an index generation, with the number of articles using each."""

    def __init__(self, reader: IndexReader) -> None:
        self.frequency: dict[str, int] = {}
        # Segment by segment, the counts added: the index-wide iteration asks every segment
        # for every word (five times slower, in the first request to find a new generation).
        frequency = self.frequency
        for segment, _ in reader.leaf_readers():
            for text, info in segment.iter_field(SPELLING_FIELD):
                word = text.decode("utf-8") if isinstance(text, bytes) else text
                frequency[word] = frequency.get(word, 0) + info.doc_frequency()
        self.words = sorted(self.frequency)
        # Words by first letter and length: where corrections are sought.
        self._shelves: dict[tuple[str, int], list[str]] = {}
        for word in self.words:
            self._shelves.setdefault((word[0], len(word)), []).append(word)
        self._corrections: OrderedDict[str, list[str]] = OrderedDict()
        self._completions: OrderedDict[str, list[str]] = OrderedDict()

    def __contains__(self, word: str) -> bool:
        return word in self.frequency

    def completions(self, prefix: str) -> list[str]:
        """The most used words that begin with `prefix`."""
        found = _cached(self._completions, prefix)
        if found is None:
            start = bisect_left(self.words, prefix)
            end = bisect_left(self.words, prefix + "\U0010ffff", start)
            found = []
            documents = 0
            for word in heapq.nsmallest(
                PREFIX_EXPANSIONS, self.words[start:end], key=lambda w: (-self.frequency[w], w)
            ):
                documents += self.frequency[word]
                if found and documents > COMPLETION_DOCUMENTS:
                    break
                found.append(word)
            _remember(self._completions, prefix, found)
        return found

    def corrections(self, word: str) -> list[str]:
        """Known words closest to an unknown one (fewest edits, then the most used)."""
        found = _cached(self._corrections, word)
        if found is None:
            # Typos spare the first letter, and two swapped letters are one slip.
            maxdist = 1 if len(word) < 7 else 2
            ranked = []
            for length in range(len(word) - maxdist, len(word) + maxdist + 1):
                shelf = self._shelves.get((word[0], length), ())
                # Optimal string alignment, in C: an edit is an insertion, a deletion, a
                # substitution or two neighbours swapped.
                for candidate, distance, _ in process.extract_iter(
                    word, shelf, scorer=OSA.distance, score_cutoff=maxdist
                ):
                    if candidate != word:
                        ranked.append((distance, -self.frequency[candidate], candidate))
            ranked.sort()
            found = [c for d, _, c in ranked if d == ranked[0][0]][:CORRECTIONS]
            _remember(self._corrections, word, found)
        return found


def _cached(cache: OrderedDict[str, list[str]], key: str) -> list[str] | None:
    found = cache.get(key)
    if found is not None:
        cache.move_to_end(key)
    return found


def _remember(cache: OrderedDict[str, list[str]], key: str, value: list[str]) -> None:
    cache[key] = value
    if len(cache) > _CACHED_WORDS:
        cache.popitem(last=False)


class Planner:
    """Turns the folded words of a query into units, for one index generation."""

    def __init__(
        self, synonyms: Synonyms, vocabulary: Vocabulary, indexed: Callable[[str], bool]
    ) -> None:
        self.synonyms = synonyms
        self.vocabulary = vocabulary
        self._indexed = indexed  # is this stem in any ranked field?

    def plan(self, folded: list[str], prefix: bool) -> Plan:
        """The units of a query's folded words; `prefix`: the last one is still being typed."""
        plan = Plan()
        content = [(i, w) for i, w in enumerate(folded) if not is_stop(w)]
        last = len(folded) - 1
        if prefix and folded and is_stop(folded[-1]) and len(folded[-1]) >= 2:
            content.append((last, folded[-1]))  # "dé" may become "déconnexion"
        stems = [stem(w) for _, w in content]
        i = 0
        while i < len(content):
            position, word = content[i]
            matched = self.synonyms.match(stems, i)
            as_prefix = prefix and position == last
            if matched:
                length, group = matched
                own = tuple(stems[i : i + length])
                typed = tuple(w for _, w in content[i : i + length])
                alternatives = [
                    Alternative(alt, OWN, typed) if alt == own else Alternative(alt, SYNONYM)
                    for alt in self.synonyms.groups[group]
                ]
                if as_prefix:  # "mdp" is an abbreviation, and may yet become "mdpx"
                    alternatives += self._word(position, word, as_prefix, plan)
                unit = self._unit(alternatives, size=length, plan=plan)
                i += length
            else:
                unit = self._unit(self._word(position, word, as_prefix, plan), 1, plan)
                i += 1
            if unit is not None:
                plan.units.append(unit)
        return plan

    def _word(self, position: int, word: str, as_prefix: bool, plan: Plan) -> list[Alternative]:
        weights: dict[str, float] = {}
        own = stem(word)
        if not is_stop(word):
            weights[own] = OWN
        completions = self.vocabulary.completions(word) if as_prefix and len(word) >= 2 else []
        # A word being typed is not misspelt while known words still begin with it.
        if (
            word not in self.vocabulary
            and not completions
            and len(word) >= 4
            and not word.isdigit()
        ):
            corrections = self.vocabulary.corrections(word)
            if corrections:
                plan.corrections[position] = corrections[0]
            # A word known in another form (an inflection) is not corrected in the ranking.
            if own not in weights or not self._indexed(own):
                for correction in corrections:
                    weights.setdefault(stem(correction), CORRECTION)
        for completion in completions:
            if not is_stop(completion):
                weights.setdefault(stem(completion), COMPLETION)
        return [
            Alternative((s,), w, (word,) if s == own and w == OWN else ())
            for s, w in weights.items()
        ]

    def _unit(self, alternatives: list[Alternative], size: int, plan: Plan) -> Unit | None:
        kept = []
        for alternative in alternatives:
            if all(self._indexed(s) for s in alternative.stems):
                kept.append(alternative)
                plan.stems.update(alternative.stems)
        return Unit(tuple(kept), size) if kept else None
