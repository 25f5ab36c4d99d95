"""Damage windows and the windowed re-render of a FlatView.

Every setter records, before and after it changes a region, the guest-physical
windows where that region shows (:func:`places`: up through its parents and
through the aliases that show it, geometry only).  At commit the system renders
only those windows of each view's root (:func:`rerender`), splices them into the
previous view, re-applies QEMU's merge rule at the windows' edges, and returns the
changed spans, from which the listeners' callbacks are diffed.  The full render
(:func:`flatview.render.render`) stays the reference, and the fallback when the
damage covers much of the view.
"""

from __future__ import annotations

from collections.abc import Sequence

from flatview.diff import RangeUpdate, ViewDiff, diff_ranges
from flatview.flatrange import FlatRange, FlatView, merge_adjacent
from flatview.region import ADDR_SPACE_END, MemoryRegion
from flatview.render import render_window

MAX_PLACES = 256
"""A region shown in more places than this damages its whole tree."""

Place = tuple[MemoryRegion, int, int, int]
"""(top, base, lo, hi): in the tree under ``top``, the region's offset 0 is at ``base``
and it can be visible in ``[lo, hi)``."""


class TooManyPlaces(Exception):
    """The damage of one change is not worth tracking window by window."""


def places(mr: MemoryRegion, depth: int = 0) -> list[Place]:
    """Every place ``mr`` can show, in the tree of each top-level region above it."""
    if depth > 32:
        raise TooManyPlaces
    out: list[Place] = []
    parent = mr._parent
    if parent is None:
        base = mr._addr
        lo, hi = max(base, 0), min(base + mr._size, ADDR_SPACE_END)
        if lo < hi:
            out.append((mr, base, lo, hi))
    else:
        for top, pbase, plo, phi in places(parent, depth + 1):
            base = pbase + mr._addr
            lo, hi = max(base, plo), min(base + mr._size, phi)
            if lo < hi:
                out.append((top, base, lo, hi))
    for alias in _opaque_aliases(mr):
        for top, abase, alo, ahi in places(alias, depth + 1):
            base = abase - alias._alias_offset
            lo, hi = max(base, alo), min(base + mr._size, ahi)
            if lo < hi:
                out.append((top, base, lo, hi))
    if len(out) > MAX_PLACES:
        raise TooManyPlaces
    return out


def _transparent_top(alias: MemoryRegion, target: MemoryRegion) -> bool:
    """An alias that only serves as another address space's root onto all of
    ``target`` (itself a top): rendering it is rendering ``target``."""
    return (
        alias._parent is None
        and not alias._aliases
        and alias._alias_offset == 0
        and alias._addr == 0
        and alias._size >= target._size
        and target._addr == 0
    )


def _opaque_aliases(mr: MemoryRegion) -> list[MemoryRegion]:
    """The aliases of ``mr`` that are not transparent tops (those show ``mr`` as ``mr``
    shows itself: the same windows), cached until an alias changes."""
    gen = mr.system._alias_generation
    if mr._opaque is None or mr._opaque[0] != gen:
        if mr._parent is None:
            found = [a for a in mr._aliases if not _transparent_top(a, mr)]
        else:
            found = list(mr._aliases)
        mr._opaque = (gen, found)
    return mr._opaque[1]


def _merged_windows(windows: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(windows):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _ambiguous(a: FlatRange | None, after: FlatRange | None) -> bool:
    """Unmergeable neighbours across a window edge that continue each other: the full
    render keeps them as one range if they come from one request, two otherwise, and
    the window cannot tell which."""
    if a is None or after is None:
        return False
    return (
        a.end == after.addr
        and (a.unmergeable or after.unmergeable)
        and a.region is after.region
        and a.offset_in_region + a.size == after.offset_in_region
    )


def rerender(
    root: MemoryRegion, old: FlatView, windows: Sequence[tuple[int, int]], *, limit: float = 0.5
) -> tuple[FlatView, ViewDiff[FlatRange]] | None:
    """``old`` re-rendered in ``windows`` only, and the diff of the changed spans (the
    full diff minus its nops outside them); None when the windows touch more than
    ``limit`` of the view (render it whole instead)."""
    n = len(old)

    def span(lo: int, hi: int) -> tuple[int, int]:
        """Old ranges touching [lo, hi), widened by one neighbour on each side (the
        merge rule may join a new range with it)."""
        i = old.bisect_right(lo) - 1
        if i < 0 or old.at(i).end <= lo:
            i += 1
        j = old.bisect_left(hi)
        return max(i - 1, 0), min(j + 1, n)

    wins = _merged_windows(windows)
    spans: list[tuple[int, int, int, int]] = []  # (a, b, lo, hi)
    for lo, hi in wins:
        a, b = span(lo, hi)
        if spans and a < spans[-1][1]:  # shares a neighbour: one window
            pa, _, plo, _ = spans.pop()
            lo, a = plo, pa
            b = max(b, span(lo, hi)[1])
        spans.append((a, b, lo, hi))
    if sum(b - a for a, b, _, _ in spans) > limit * max(n, 8):
        return None
    edits: list[tuple[int, int, list[FlatRange]]] = []
    removed: list[FlatRange] = []
    updates: list[RangeUpdate[FlatRange]] = []
    for a, b, lo, hi in spans:
        left: list[FlatRange] = []
        right: list[FlatRange] = []
        before = old.slice(a, b)
        for r in before:
            if r.end <= lo:
                left.append(r)
            elif r.addr >= hi:
                right.append(r)
            else:  # cut at the window: the parts outside it stay as they were
                if r.unmergeable and (r.addr < lo or r.end > hi):
                    return None  # the full render may keep it whole: cutting is not neutral
                if r.addr < lo:
                    left.append(r.sliced(r.addr, lo))
                if r.end > hi:
                    right.append(r.sliced(hi, r.end))
        fresh = render_window(root, lo, hi)
        if fresh and (
            _ambiguous(left[-1] if left else None, fresh[0])
            or _ambiguous(fresh[-1], right[0] if right else None)
        ):
            return None
        new = merge_adjacent(left + fresh + right)
        d = diff_ranges(before, new)
        removed.extend(d.removed)
        updates.extend(d.updates)
        edits.append((a, b, new))
    return old.spliced(edits), ViewDiff(tuple(removed), tuple(updates))
