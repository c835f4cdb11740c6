"""Usage: views, searches and votes counted in memory, written in batches; frequent questions."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kb.clock import PARIS, today
from kb.db import upsert_many
from kb.knowledge.search.analysis import words
from kb.tables import article_reads, article_views, searches, suggestion_events, votes

FREQUENT_COUNT = 3
FREQUENT_WINDOW_DAYS = 30
READS_KEPT = dt.timedelta(days=90)
# A serving worker's write runs in a thread beside its requests, and its Python holds the
# interpreter they need: it pauses after each slice of this many searches (about a
# millisecond of work), so that a request waits a slice at most, not the whole count.
SLICE = 256
T = TypeVar("T")


def _paced(items: Iterable[T], pause: Callable[[], object] | None) -> Iterator[T]:
    """`items`, with `pause()` called before each slice of SLICE items but the first."""
    for n, item in enumerate(items):
        if pause is not None and n and not n % SLICE:
            pause()
        yield item


@lru_cache(maxsize=4096)  # the popular queries and their prefixes come back all day
def normalized_query(query: str) -> str:
    """How a query is counted: its folded words, so "Mot de passe" and "mot de passe " are one."""
    return " ".join(words(query))[:500]


@dataclass
class _Search:
    count: int
    results: int
    last_seen: dt.datetime
    spelling: str
    weak: bool


class Usage:
    """Counts in memory, so a page view costs no write; `flush()` writes them in one go.
    Disabled (`enabled=False`) in the editors' preview: their own reloads are not readers."""

    def __init__(self, engine: Engine, enabled: bool = True) -> None:
        self.engine = engine
        self.enabled = enabled
        self._lock = threading.Lock()
        self._views: Counter[tuple[str, dt.date]] = Counter()
        self._searches: dict[tuple[str, dt.date], _Search] = {}
        self._searched: list[tuple[str, int, bool, float]] = []  # (query, results, weak, when)
        self._votes: dict[tuple[str, dt.date], list[int]] = {}
        self._opens: list[dict[str, Any]] = []
        self._reads: list[dict[str, Any]] = []

    def suggestion_opened(self, slug: str, account_id: int | None) -> None:
        """An article suggested under a ticket's subject was opened: perhaps a ticket avoided."""
        if not self.enabled:
            return
        event = {"slug": slug, "account_id": account_id, "at": dt.datetime.now(dt.UTC)}
        with self._lock:
            self._opens.append(event)

    def read_by(self, slug: str, account_id: int) -> None:
        """An establishment read this article: support sees it beside a ticket written soon
        after ("articles lus dans l'heure avant le ticket")."""
        event = {"slug": slug, "account_id": account_id, "at": dt.datetime.now(dt.UTC)}
        with self._lock:
            self._reads.append(event)

    def view(self, slug: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._views[(slug, today())] += 1

    def search(self, query: str, results: int, weak: bool = False) -> None:
        """One search; `weak`: it found articles, but none answering all its words.

        Noted as it came, and counted when written: with every query new, folding the query,
        reading the clocks and keeping an entry took 16 µs of each request's own time in a
        serving worker, where a batch does it in a fraction of that, between requests."""
        if self.enabled:
            with self._lock:
                self._searched.append((query, results, weak, time.time()))

    @staticmethod
    def _count_searches(
        noted: list[tuple[str, int, bool, float]],
        into: dict[tuple[str, dt.date], _Search],
        pause: Callable[[], object] | None = None,
    ) -> None:
        """Searches noted, counted by (folded query, day) into `into`, the last one's results
        and spelling kept, and when it was to the second: one time for all the searches of a
        second, converted once for the database instead of once a search."""
        seconds: dict[int, tuple[dt.date, dt.datetime]] = {}
        for query, results, weak, at in _paced(noted, pause):
            normalized = normalized_query(query)
            if not normalized:
                continue
            second = int(at)
            moment = seconds.get(second)
            if moment is None:
                moment = seconds[second] = (
                    dt.datetime.fromtimestamp(second, PARIS).date(),
                    dt.datetime.fromtimestamp(second, dt.UTC),
                )
            day, now = moment
            spelling = " ".join(query.split())[:500]  # as typed, accents and capitals kept
            entry = into.get((normalized, day))
            if entry is None:
                into[normalized, day] = _Search(1, results, now, spelling, weak)
            else:
                entry.count, entry.results, entry.last_seen = entry.count + 1, results, now
                entry.spelling, entry.weak = spelling, weak

    def vote(self, slug: str, helpful: bool) -> None:
        if not self.enabled:
            return
        with self._lock:
            counts = self._votes.setdefault((slug, today()), [0, 0])
            counts[0 if helpful else 1] += 1

    def pending(self) -> int:
        with self._lock:
            noted, self._searched = self._searched, []
            self._count_searches(noted, self._searches)
            return (
                len(self._views) + len(self._searches) + len(self._votes) + len(self._opens)
                + len(self._reads)
            )  # fmt: skip

    def flush(self, pause: Callable[[], object] | None = None) -> int:
        """Write what was counted since the last flush; kept for the next one if it fails.
        `pause`, if given, is called between two slices of the searches' work (SLICE)."""
        with self._lock:
            views, self._views = self._views, Counter()
            found, self._searches = self._searches, {}
            voted, self._votes = self._votes, {}
            opens, self._opens = self._opens, []
            reads, self._reads = self._reads, []
            noted, self._searched = self._searched, []
        # Counted here, out of the lock: requests noting their searches never wait for it.
        # `found` holds only what an earlier write failed to write: older, added to.
        self._count_searches(noted, found, pause)
        if not (views or found or voted or opens or reads):
            return 0
        # Made before the transaction: a pause never holds the database's write lock.
        search_rows = [
            {"query": query, "day": day, "count": e.count, "results": e.results,
             "last_seen": e.last_seen, "spelling": e.spelling, "weak": int(e.weak)}
            for (query, day), e in _paced(sorted(found.items()), pause)
        ]  # fmt: skip
        try:
            with self.engine.begin() as connection:
                views_rows = [
                    {"slug": slug, "day": day, "views": n}
                    for (slug, day), n in sorted(views.items())
                ]
                upsert_many(connection, article_views, ["slug", "day"], ["views"], [], views_rows)
                upsert_many(connection, searches, ["query", "day"], ["count"],
                            ["results", "last_seen", "spelling", "weak"],
                            search_rows)  # fmt: skip
                vote_rows = [
                    {"slug": slug, "day": day, "helpful": yes, "unhelpful": no}
                    for (slug, day), (yes, no) in sorted(voted.items())
                ]
                upsert_many(connection, votes, ["slug", "day"], ["helpful", "unhelpful"], [],
                            vote_rows)  # fmt: skip
                if opens:
                    connection.execute(sa.insert(suggestion_events), opens)
                if reads:
                    connection.execute(sa.insert(article_reads), reads)
                    # Who read what is kept no longer than a ticket's context needs it.
                    oldest = dt.datetime.now(dt.UTC) - READS_KEPT
                    connection.execute(sa.delete(article_reads).where(article_reads.c.at < oldest))
        except sa.exc.SQLAlchemyError:
            self._restore(views, found, voted, opens, reads)
            raise
        return len(views) + len(found) + len(voted) + len(opens) + len(reads)

    def _restore(
        self,
        views: Counter[tuple[str, dt.date]],
        found: dict[tuple[str, dt.date], _Search],
        voted: dict[tuple[str, dt.date], list[int]],
        opens: list[dict[str, Any]],
        reads: list[dict[str, Any]],
    ) -> None:
        with self._lock:
            self._views.update(views)
            self._opens[:0] = opens
            self._reads[:0] = reads
            for key, entry in found.items():
                current = self._searches.get(key)
                if current is None:
                    self._searches[key] = entry
                else:
                    current.count += entry.count
            for key, (yes, no) in voted.items():
                counts = self._votes.setdefault(key, [0, 0])
                counts[0] += yes
                counts[1] += no


def most_viewed(engine: Engine, since: dt.date, limit: int) -> list[tuple[str, int]]:
    total = sa.func.sum(article_views.c.views).label("total")
    query = (
        sa.select(article_views.c.slug, total)
        .where(article_views.c.day >= since)
        .group_by(article_views.c.slug)
        .order_by(total.desc(), article_views.c.slug)
        .limit(limit)
    )
    with engine.connect() as connection:
        return [(row.slug, int(row.total)) for row in connection.execute(query)]


def frequent_questions(
    engine: Engine, listing: Sequence[dict[str, Any]], on: dt.date | None = None
) -> list[dict[str, Any]]:
    """Editors' pins (featured 1..3) first, then the most viewed articles of the last 30 days."""
    published = {a["slug"]: a for a in listing if not a["draft"]}
    pinned = sorted(
        (a for a in published.values() if a.get("featured")), key=lambda a: a["featured"]
    )
    chosen = pinned[:FREQUENT_COUNT]
    if len(chosen) < FREQUENT_COUNT:
        since = (on or today()) - dt.timedelta(days=FREQUENT_WINDOW_DAYS)
        taken = {a["slug"] for a in chosen}
        for slug, _views in most_viewed(engine, since, limit=FREQUENT_COUNT * 4 + len(taken)):
            if slug in published and slug not in taken:
                chosen.append(published[slug])
                taken.add(slug)
            if len(chosen) == FREQUENT_COUNT:
                break
    return chosen
