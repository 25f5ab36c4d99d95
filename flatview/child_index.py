"""The children of one container, found by address.

A container with thousands of children (a PCI window full of BARs) must not be
walked linearly for every window a commit re-renders.  The index keeps the
children sorted by offset beside the list of their offsets, and the size of the
widest child ever indexed: the children that may meet ``[lo, hi)`` start in
``[lo - widest, hi)``, found by bisection.  It is kept up to date on every insert
and removal (a sorted-array insert: a memmove, no re-sort), and ``widest`` only
grows (an over-estimate widens the search, never drops a child).

Found children are returned in render order: descending priority, and among equal
priorities the most recently added first (each insert gets a sequence number),
exactly the order of the container's own child list.
"""

from __future__ import annotations

import bisect
from typing import Generic, Protocol, TypeVar


class Child(Protocol):
    """What the index reads of a child (a :class:`~flatview.region.MemoryRegion`)."""

    _addr: int
    _size: int
    _priority: int
    _seq: int


C = TypeVar("C", bound=Child)


def render_key(child: Child) -> tuple[int, int]:
    """Sorts children in render order (the order of the parent's child list)."""
    return (-child._priority, -child._seq)


class ChildIndex(Generic[C]):
    __slots__ = ("_keys", "_regions", "_starts", "_widest")

    def __init__(self, children: list[C]) -> None:
        ordered = sorted(children, key=lambda c: (c._addr, c._seq))
        self._starts = [c._addr for c in ordered]
        self._keys = [(c._addr, c._seq) for c in ordered]
        """(offset, insertion number): unique, so a removal finds its child by bisection
        even among many children at one offset."""
        self._regions = ordered
        self._widest = max((c._size for c in ordered), default=0)

    def add(self, child: C) -> None:
        i = bisect.bisect_left(self._keys, (child._addr, child._seq))
        self._starts.insert(i, child._addr)
        self._keys.insert(i, (child._addr, child._seq))
        self._regions.insert(i, child)
        if child._size > self._widest:
            self._widest = child._size

    def remove(self, child: C) -> None:
        """Drop ``child`` (indexed at its current offset)."""
        i = bisect.bisect_left(self._keys, (child._addr, child._seq))
        assert self._regions[i] is child
        del self._starts[i]
        del self._keys[i]
        del self._regions[i]

    def grew(self, size: int) -> None:
        """A child's size became ``size`` (its offset is unchanged)."""
        if size > self._widest:
            self._widest = size

    def find(self, lo: int, hi: int) -> list[C] | None:
        """The children meeting ``[lo, hi)`` in render order, or None when they are
        more than half of all (the caller walks its own list then)."""
        starts = self._starts
        i = bisect.bisect_left(starts, lo - self._widest)
        j = bisect.bisect_left(starts, hi)
        if j - i > len(starts) // 2:
            return None
        found = [c for c in self._regions[i:j] if c._addr + c._size > lo]
        found.sort(key=render_key)
        return found
