"""Query mixes for ``bench.http``: what a help center's search box really receives.

- ``realistic(...)``: popular queries, repeated (Zipf weights), each one arriving as it is
  typed: some of its prefixes ("m", "mo", "mot", "mot d", "mot de p", …, as a debounced
  search-as-you-type field sends them), then the whole query. The popular queries are the
  judged queries of ``tests/relevance/*.yml`` and the titles of the served articles, as a
  user would type them (lowercase).
- ``distinct(...)``: every request a different query, two or three words of the served
  corpus drawn at random: nothing repeats, so no cache can help.

Both are deterministic for a seed, and return queries (plain text), not URLs.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import yaml

from bench.corpora import read_front_matter

ROOT = Path(__file__).resolve().parent.parent
JUDGED_FILES = (
    ROOT / "tests" / "relevance" / "demarches.yml",
    ROOT / "tests" / "relevance" / "shipped.yml",
)
# A debounced field sends about one keystroke in three while typing at a steady pace.
PREFIX_CHANCE = 0.35
ZIPF_EXPONENT = 1.0
_WORD_RE = re.compile(r"[^\W\d_]{3,}")


def judged_queries(files: Iterable[Path] = JUDGED_FILES) -> list[str]:
    """The ``query`` of every judged query, in file order, without duplicates."""
    seen: dict[str, None] = {}
    for path in files:
        for item in yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []:
            query = str(item["query"]).strip()
            if query:
                seen.setdefault(query, None)
    return list(seen)


def corpus_titles(content_dir: Path) -> list[str]:
    """The served articles' titles, lowercased as typed in a search box."""
    titles: dict[str, None] = {}
    for path in sorted(Path(content_dir).rglob("*.md")):
        meta, _ = read_front_matter(path)
        title = " ".join(str(meta.get("title", "")).lower().split())
        if title:
            titles.setdefault(title, None)
    return list(titles)


def corpus_words(content_dir: Path, min_articles: int = 2) -> list[str]:
    """Words (3+ letters, lowercase) found in at least ``min_articles`` served articles."""
    spread: Counter[str] = Counter()
    for path in sorted(Path(content_dir).rglob("*.md")):
        meta, body = read_front_matter(path)
        text = f"{meta.get('title', '')} {body}".lower()
        spread.update(set(_WORD_RE.findall(text)))
    return sorted(w for w, n in spread.items() if n >= min_articles)


def typed_prefixes(query: str) -> list[str]:
    """Every prefix a search-as-you-type field could send, shortest first (not the query)."""
    return [query[:i] for i in range(1, len(query)) if not query[i - 1].isspace()]


def realistic(popular: list[str], count: int, seed: int = 1) -> list[str]:
    """``count`` queries: popular ones by Zipf weight, each preceded by some of its prefixes."""
    rng = random.Random(seed)
    ranked = list(popular)
    rng.shuffle(ranked)  # which query is the most popular: arbitrary but fixed
    weights = [1.0 / (rank**ZIPF_EXPONENT) for rank in range(1, len(ranked) + 1)]
    out: list[str] = []
    while len(out) < count:
        query = rng.choices(ranked, weights)[0]
        out.extend(p for p in typed_prefixes(query) if rng.random() < PREFIX_CHANCE)
        out.append(query)
    return out[:count]


def distinct(words: list[str], count: int, seed: int = 2) -> list[str]:
    """``count`` different queries of two or three corpus words."""
    if len(words) < 10:
        raise ValueError("too few corpus words to build distinct queries")
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        query = " ".join(rng.sample(words, rng.choice((2, 2, 3))))
        if query not in seen:
            seen.add(query)
            out.append(query)
    return out
