"""What a search answers: hits, a page of results, encoded once for the JSON API."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(frozen=True)
class Hit:
    slug: str
    title: str
    title_html: str
    category: str
    url: str
    snippet: str  # HTML: escaped text with <mark> around the matched words
    score: float


# A hit as it is kept: (slug, title, title_html, category, url, snippet, score). A worker
# keeps thousands of answers; plain tuples of strings and numbers are objects the garbage
# collector stops visiting, where a Hit each would be visited at every full collection.
HitRow = tuple[str, str, str, str, str, str, float]


def _dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON. orjson, in Rust: a page of ten hits (3.4 kB) in 7 µs, where the
    standard library's encoder took 50 to 70 and its UTF-8 encoding 18 more."""
    return orjson.dumps(value)


def _row_json(row: HitRow) -> dict[str, Any]:
    """A hit as the API gives it, from its row (no Hit made: ten of them in each answer)."""
    slug, title, _, category, url, snippet, score = row
    return {"slug": slug, "title": title, "category": category, "url": url, "snippet": snippet,
            "score": round(score, 4)}  # fmt: skip


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
        results = [_row_json(row) for row in self.rows]
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
            "results": [_row_json(row) for row in self.rows],
            "facets": self.facets,
            "suggestion": self.suggestion,
        }
