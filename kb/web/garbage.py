"""A serving worker's garbage collection, kept off the requests' path."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

SETTLE_SECONDS = 0.1
FULL_SECONDS = 3600.0


class Garbage:
    """Sets what a worker keeps (modules, the index, its caches) aside from garbage collection.

    Python's full collections visit every object the worker holds: under load, a pause of 50
    to 150 ms for each request waiting on that worker, every few seconds. Here, at start-up
    and then every SETTLE_SECONDS, the young garbage is collected (a millisecond or two) and
    what survives is frozen: later collections skip it, and freed objects still go at once
    (reference counting is untouched). Cycles that became garbage after their objects were
    frozen wait for the hourly full collection, which unfreezes everything first.

    Measured on 28 November at load 0.8 (bench/README.md, HTTP): bench.http's all-distinct
    p99 went from 90-175 ms to 46-48 ms (54.6 ms with the collector off entirely); in process,
    a full collection with warm caches from 78 to 10 ms. A short bench.http on 2 December, with
    and without it (3 rounds of 3 s, load 6 to 10), could not tell: identical runs differed by
    2x. Again on a quiet machine: `bench.http --only distinct`, then `--tree` a tree without it.

    Every second rather than every five (4 December): every query new, each keeps some thirty
    objects in the answers' caches, and the young generations filled up between two settles;
    in process at 20,000 queries warm, 8,000 queries with a settle every 2,500 (five seconds
    at bench.http's pace) paused up to 26-34 ms (settles, and the collector's own collections of
    the middle generation), max 27.8 ms; with one every 800, 5-6 ms a settle and max 10.6 ms,
    the same CPU in all. Turning the automatic collections off instead left each request's
    cycles to the settle: 25-38 ms a settle every 800.

    Every tenth of a second (4 December, later): once the answers' caches are full, each
    answer kept evicts an older one, and Python subtracts every object freed from the young
    generation's count, the old ones included. The count stays low, the automatic collections
    come late, and the young generation grows: 11,000 to 40,000 objects (the answers' tuples),
    collected in 6 to 17 ms (the automatic ones) and 20 to 33 ms (the settles, every second).
    Settled every tenth of a second, they are collected while still in the processor's cache.
    `kb serve --workers 2` under wrk, 64 connections, 8 s, two runs each, taken in turn:
    suggestions p99 31.8, 36.9 ms → 24.0, 22.5 ms and 4,780, 4,439 → 5,312, 5,508 requests a
    second; never-seen searches p99 62.4, 56.7 ms → 47.7, 47.7 ms; popular ones unchanged
    (19.9, 21.4 ms → 19.6, 22.4 ms).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last_full = clock()

    def start(self) -> None:
        gc.collect()
        gc.freeze()
        self._last_full = self._clock()

    def settle(self) -> None:
        if self._clock() - self._last_full >= FULL_SECONDS:
            gc.unfreeze()
            gc.collect()
            self._last_full = self._clock()
        else:
            gc.collect(1)
        gc.freeze()
