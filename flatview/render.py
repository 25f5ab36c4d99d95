"""Rendering a region tree into a FlatView, by QEMU's rules.

A depth-first walk carries a base address, a clip window and the inherited
readonly / nonvolatile / unmergeable flags.  Children render first (in list
order: descending priority, newest first among equals); a terminating region then
fills only the gaps nobody claimed.  Aliases shift into their target.  The
result is simplified with QEMU's merge rule.
"""

from __future__ import annotations

import bisect

from flatview.flatrange import FlatRange, FlatView
from flatview.region import ADDR_SPACE_END, MemoryRegion, RegionKind

# start, end, region, offset_in_region, readonly, nonvolatile, unmergeable
_Piece = tuple[int, int, MemoryRegion, int, bool, bool, bool]


class _Canvas:
    """Sorted, non-overlapping pieces; earlier pieces always win."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.pieces: list[_Piece] = []

    def fill(
        self, start: int, end: int, mr: MemoryRegion, base: int, ro: bool, nv: bool, um: bool
    ) -> None:
        starts, ends, pieces = self.starts, self.ends, self.pieces
        i = bisect.bisect_right(ends, start)
        cur = start
        while cur < end:
            if i < len(starts) and starts[i] < end:
                if starts[i] > cur:
                    gap_end = starts[i]
                    starts.insert(i, cur)
                    ends.insert(i, gap_end)
                    pieces.insert(i, (cur, gap_end, mr, cur - base, ro, nv, um))
                    i += 1
                cur = max(cur, ends[i])
                i += 1
            else:
                starts.insert(i, cur)
                ends.insert(i, end)
                pieces.insert(i, (cur, end, mr, cur - base, ro, nv, um))
                break


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
    if not mr.enabled:
        return
    base += mr.addr
    ro = ro or mr.readonly
    nv = nv or mr.nonvolatile
    um = um or mr.unmergeable
    start = max(base, clip_start)
    end = min(base + mr.size, clip_end)
    if start >= end:
        return
    if mr.kind is RegionKind.ALIAS:
        target = mr.alias_target
        assert target is not None
        _render(canvas, target, base - target.addr - mr.alias_offset, start, end, ro, nv, um)
        return
    for child in mr.subregions:
        _render(canvas, child, base, start, end, ro, nv, um)
    if mr.terminates:
        canvas.fill(start, end, mr, base, ro, nv, um)


def render(root: MemoryRegion | None) -> FlatView:
    """Render the tree under ``root`` (None renders the empty view)."""
    if root is None:
        return FlatView(())
    canvas = _Canvas()
    _render(canvas, root, 0, 0, ADDR_SPACE_END, False, False, False)
    return FlatView(simplify(canvas.pieces))


def simplify(pieces: list[_Piece]) -> tuple[FlatRange, ...]:
    """Build FlatRanges, merging neighbours exactly when QEMU's rule allows."""
    out: list[FlatRange] = []
    masks: dict[int, tuple[int, bool]] = {}
    for start, end, mr, off, ro, nv, um in pieces:
        attrs_ = masks.get(id(mr))
        if attrs_ is None:
            attrs_ = masks[id(mr)] = (mr.dirty_log_mask(), mr.romd_mode)
        mask, romd = attrs_
        if out:
            prev = out[-1]
            if (
                prev.end == start
                and prev.region is mr
                and prev.offset_in_region + prev.size == off
                and prev.dirty_log_mask == mask
                and prev.romd_mode == romd
                and prev.readonly == ro
                and prev.nonvolatile == nv
                and not prev.unmergeable
                and not um
            ):
                out[-1] = FlatRange(
                    prev.addr, end - prev.addr, mr, prev.offset_in_region, ro, romd, nv, um, mask
                )
                continue
        out.append(FlatRange(start, end - start, mr, off, ro, romd, nv, um, mask))
    return tuple(out)


def resolve_root(mr: MemoryRegion | None) -> MemoryRegion | None:
    """The region whose rendering equals ``mr``'s (QEMU's flatview root resolution).

    Descends through an alias of its whole target at offset 0, and through a
    container with exactly one enabled child at offset 0 that it fully contains.
    Address spaces whose roots resolve to the same region share one FlatView.

    Unlike QEMU, it never descends through a region that is readonly, nonvolatile
    or unmergeable: those flags are inherited by everything below, so skipping the
    region would render a different view (QEMU drops them there).
    """
    while mr is not None and mr.enabled:
        if mr.readonly or mr.nonvolatile or mr.unmergeable:
            return mr
        if mr.kind is RegionKind.ALIAS:
            target = mr.alias_target
            assert target is not None
            if mr.alias_offset == 0 and mr.size >= target.size:
                mr = target
                continue
        elif not mr.terminates:
            found = 0
            nxt: MemoryRegion | None = None
            for child in mr.subregions:
                if child.enabled:
                    found += 1
                    if found > 1:
                        nxt = None
                        break
                    if child.addr == 0 and mr.size >= child.size:
                        nxt = child
            if found == 0:
                return None
            if nxt is not None:
                mr = nxt
                continue
        return mr
    return None
