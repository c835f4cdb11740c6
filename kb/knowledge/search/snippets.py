"""Highlighted titles and snippets: the passage that holds the most matched words."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from functools import lru_cache
from html import escape
from itertools import chain

from kb.knowledge.search.analysis import fold, is_stop, stem

SNIPPET_CHARS = 200

Span = tuple[int, int, str]  # start, end, stem


StemIndex = dict[str, tuple[Span, ...]]
_WORDS = re.compile(r"\w+")


def stem_index(folded: str) -> StemIndex:
    """Where each stem of a folded text stands: built once per article, read by every query.

    Tuples, not lists: once the garbage collector has seen that they hold only numbers and
    strings it stops visiting them, and a worker keeps the index of every article it has
    shown. Each place is a whole span, its stem included: read as it is kept, not made anew
    for each hit."""
    places: dict[str, list[Span]] = {}
    for match in _WORDS.finditer(folded):
        word = match.group()
        if len(word) > 1 and not is_stop(word):
            st = stem(word)
            places.setdefault(st, []).append((match.start(), match.end(), st))
    return {st: tuple(spans) for st, spans in places.items()}


def match_spans(
    text: str, stems: set[str], folded: str | None = None, index: StemIndex | None = None
) -> Sequence[Span]:
    """Where the words of `text` stem to one of `stems` (`folded` is fold(text), if known;
    `index`, its stem_index, if known), in text order."""
    if not stems:
        return []
    if index is not None:
        found = [index[st] for st in stems if st in index and len(st) > 1]
        if len(found) == 1:  # one stem: its places are in text order already
            return found[0]
        return sorted(chain.from_iterable(found))
    if folded is None:
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


def _mark(text: str, spans: Sequence[Span], start: int, end: int) -> str:
    out, cursor = [], start
    # Spans are in text order: only those from `start` on can be inside.
    for s, e, _ in spans[bisect_left(spans, (start,)) :]:
        if s >= end:
            break
        if e > end:
            continue
        out.append(escape(text[cursor:s]))
        out.append(f"<mark>{escape(text[s:e])}</mark>")
        cursor = e
    out.append(escape(text[cursor:end]))
    return "".join(out)


def highlight_all(
    text: str, stems: set[str], folded: str | None = None, index: StemIndex | None = None
) -> str:
    """`text`, escaped, with <mark> around the matched words."""
    return _mark(text, match_spans(text, stems, folded, index), 0, len(text))


def snippet(
    text: str, stems: set[str], folded: str | None = None, index: StemIndex | None = None
) -> str | None:
    """The passage of about SNIPPET_CHARS that holds the most different matched words."""
    spans = match_spans(text, stems, folded, index)
    if not spans:
        return None
    # The first window (of spans[i:j]) holding the most different stems, in one pass; a
    # window holding all of them can't be beaten: the pass stops there.
    anchor, most = spans[0][0], 0
    every = len({st for _, _, st in spans}) if len(spans) > 1 else 1
    inside: dict[str, int] = {}
    j = 0
    for i, (s, _, _) in enumerate(spans):
        if i:
            gone = spans[i - 1][2]
            inside[gone] -= 1
            if not inside[gone]:
                del inside[gone]
        window_end = s + SNIPPET_CHARS - 40
        j = max(j, i)
        while j < len(spans) and spans[j][1] <= window_end:
            inside[spans[j][2]] = inside.get(spans[j][2], 0) + 1
            j += 1
        if len(inside) > most:
            anchor, most = s, len(inside)
            if most == every:
                break
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
