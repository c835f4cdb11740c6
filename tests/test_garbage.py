"""A serving worker's garbage collection: what it keeps is frozen, cycles still go in the end."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from kb.web.garbage import FULL_SECONDS, Garbage


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the garbage collector can free it


@pytest.fixture
def clock() -> Iterator[list[float]]:
    now = [1000.0]
    yield now
    gc.unfreeze()  # the test process goes on as it was


def test_kept_objects_are_frozen_and_cycles_freed_at_the_full_collection(
    clock: list[float],
) -> None:
    garbage = Garbage(clock=lambda: clock[0])
    garbage.start()
    assert gc.get_freeze_count() > 0

    node = Node()
    gone = weakref.ref(node)
    clock[0] += 5
    garbage.settle()  # the node, still in use, is set aside with the rest
    del node
    gc.collect()
    assert gone() is not None  # frozen: no collection visits it any more

    clock[0] += FULL_SECONDS
    garbage.settle()  # the hourly full collection
    assert gone() is None
    assert gc.get_freeze_count() > 0  # and what is still in use is frozen again


def test_young_garbage_is_collected_before_it_is_frozen(clock: list[float]) -> None:
    garbage = Garbage(clock=lambda: clock[0])
    garbage.start()
    node = Node()
    gone = weakref.ref(node)
    del node  # garbage already when the worker settles
    clock[0] += 5
    garbage.settle()
    assert gone() is None
