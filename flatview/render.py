"""Rendering a region tree into a FlatView, by QEMU's rules.

A depth-first walk carries a base address, a clip window and the inherited
readonly / nonvolatile / unmergeable flags.  Children render first (in list
order: descending priority, newest first among equals); a terminating region then
fills only the gaps nobody claimed.  Aliases shift into their target.  The
result is simplified with QEMU's merge rule.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator

from flatview.flatrange import FlatRange, FlatView, merge_adjacent
from flatview.region import ADDR_SPACE_END, MemoryRegion

# start, end, region, offset_in_region, readonly, nonvolatile, unmergeable
_Piece = tuple[int, int, MemoryRegion, int, bool, bool, bool]


class _Canvas:
    """Fill requests in render order; the earliest request covering a point wins.

    QEMU inserts each leaf's gaps into the growing flat view; here the requests
    are collected and resolved in one sweep over their boundaries with a heap on
    request order — the same pieces, in O(n log n) instead of O(n^2) list inserts.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[int, int, MemoryRegion, int, bool, bool, bool]] = []

    def fill(
        self, start: int, end: int, mr: MemoryRegion, base: int, ro: bool, nv: bool, um: bool
    ) -> None:
        self.requests.append((start, end, mr, base, ro, nv, um))

    @property
    def pieces(self) -> list[_Piece]:
        reqs = self.requests
        if not reqs:
            return []
        by_start = sorted(range(len(reqs)), key=lambda k: reqs[k][0])
        points = sorted({p for r in reqs for p in (r[0], r[1])})
        heap: list[tuple[int, int]] = []  # (request order, end)
        out: list[_Piece] = []
        last_k = -1
        j = 0
        n = len(reqs)
        for p, q in itertools.pairwise(points):
            while j < n and reqs[by_start[j]][0] <= p:
                k = by_start[j]
                heapq.heappush(heap, (k, reqs[k][1]))
                j += 1
            while heap and heap[0][1] <= p:
                heapq.heappop(heap)
            if not heap:
                last_k = -1
                continue
            k = heap[0][0]
            _, _, mr, base, ro, nv, um = reqs[k]
            if k == last_k and out and out[-1][1] == p:
                prev = out[-1]
                out[-1] = (prev[0], q, mr, prev[3], ro, nv, um)
            else:
                out.append((p, q, mr, p - base, ro, nv, um))
            last_k = k
        return out


def _render(
    canvas: _Canvas,
    mr: MemoryRegion,
    base: int,
    clip_start: int,
    clip_end: int,
    ro: bool,
    nv: bool,
    um: bool,
) -> None:
    # the hot loop of every commit: read the region's fields directly (no property
    # calls, no copies of the child list) and skip children outside the clip early
    if not mr._enabled:
        return
    base += mr._addr
    ro = ro or mr._readonly
    nv = nv or mr._nonvolatile
    um = um or mr._unmergeable
    start = base if base > clip_start else clip_start
    end = base + mr._size
    if end > clip_end:
        end = clip_end
    if start >= end:
        return
    target = mr._alias_target
    if target is not None:
        _render(canvas, target, base - target._addr - mr._alias_offset, start, end, ro, nv, um)
        return
    for child in mr._enabled_children_in(start - base, end - base):
        child_start = base + child._addr
        if child._enabled and child_start < end and child_start + child._size > start:
            _render(canvas, child, base, start, end, ro, nv, um)
    if mr.kind.terminates:
        canvas.fill(start, end, mr, base, ro, nv, um)


def render(root: MemoryRegion | None) -> FlatView:
    """Render the tree under ``root`` (None renders the empty view)."""
    if root is None:
        return FlatView(())
    canvas = _Canvas()
    _render(canvas, root, 0, 0, ADDR_SPACE_END, False, False, False)
    return FlatView(simplify(canvas.pieces))


def render_window(root: MemoryRegion, lo: int, hi: int) -> list[FlatRange]:
    """The ranges of ``root``'s view inside ``[lo, hi)`` (as the full render has them,
    cut at the window's edges)."""
    canvas = _Canvas()
    _render(canvas, root, 0, lo, hi, False, False, False)
    return list(simplify(canvas.pieces))


def simplify(pieces: list[_Piece]) -> tuple[FlatRange, ...]:
    """Build FlatRanges, merging neighbours exactly when QEMU's rule allows."""
    masks: dict[int, tuple[int, bool]] = {}

    def ranges() -> Iterator[FlatRange]:
        for start, end, mr, off, ro, nv, um in pieces:
            attrs_ = masks.get(id(mr))
            if attrs_ is None:
                attrs_ = masks[id(mr)] = (mr.dirty_log_mask(), mr.romd_mode)
            mask, romd = attrs_
            yield FlatRange(start, end - start, mr, off, ro, romd, nv, um, mask)

    return tuple(merge_adjacent(ranges()))


def resolve_root(mr: MemoryRegion | None) -> MemoryRegion | None:
    """The region whose rendering equals ``mr``'s (QEMU's flatview root resolution).

    Descends through an alias of its whole target at offset 0, and through a
    container with exactly one enabled child at offset 0 that it fully contains.
    Address spaces whose roots resolve to the same region share one FlatView.

    Unlike QEMU, it never descends through a region that is readonly, nonvolatile
    or unmergeable: those flags are inherited by everything below, so skipping the
    region would render a different view (QEMU drops them there).
    """
    return resolve_chain(mr)[1]


def resolve_chain(mr: MemoryRegion | None) -> tuple[list[MemoryRegion], MemoryRegion | None]:
    """The regions :func:`resolve_root` looks at (their flags, and the children of
    the containers among them, decide the result) and the resolved root."""
    chain: list[MemoryRegion] = []
    while mr is not None and mr._enabled:
        chain.append(mr)
        if mr._readonly or mr._nonvolatile or mr._unmergeable:
            return chain, mr
        target = mr._alias_target
        if target is not None:
            if mr._alias_offset == 0 and mr._size >= target._size:
                mr = target
                continue
        elif not mr.kind.terminates:
            found = 0
            nxt: MemoryRegion | None = None
            for child in mr._subregions:
                if child._enabled:
                    found += 1
                    if found > 1:
                        nxt = None
                        break
                    if child._addr == 0 and mr._size >= child._size:
                        nxt = child
            if found == 0:
                return chain, None
            if nxt is not None:
                mr = nxt
                continue
        return chain, mr
    if mr is not None:
        chain.append(mr)
    return chain, None
