"""Where each region of a tree sits in guest-physical space.

A :class:`Placement` says that ``region`` appears with its offset 0 at ``start``
inside the window ``[lo, hi)`` that its ancestors leave it (it is visible where
the two intersect).  Every region is
listed, enabled or not, followed through aliases, because a later commit may
enable it: listeners use the placements to know where the view can be cut
without a change of structure (the KVM listener's slot layout), and they are
cached per address space by the system's structure generation.
"""

from __future__ import annotations

from typing import NamedTuple

from flatview.region import ADDR_SPACE_END, MemoryRegion, RegionKind

MAX_DEPTH = 32
"""Alias chains and nesting deeper than this are not followed."""


class Placement(NamedTuple):
    """An immutable value (a named tuple: one is made per region per structure change)."""

    region: MemoryRegion
    start: int
    """Guest-physical address of the region's offset 0 (may lie outside the window)."""
    end: int
    """``start`` plus the region's size."""
    lo: int
    hi: int
    """The window ``[lo, hi)`` its ancestors leave it (the region may be smaller)."""


def placements(root: MemoryRegion | None, *, limit: int = 100_000) -> tuple[Placement, ...]:
    """Every visible placement of every region under ``root``, depth first.
    ``limit`` bounds the walk for pathological trees (aliases shown many times)."""
    out: list[Placement] = []
    if root is None:
        return ()
    stack: list[tuple[MemoryRegion, int, int, int, int]] = [(root, 0, 0, ADDR_SPACE_END, 0)]
    visits = 0
    while stack and visits < limit:
        mr, base, clip_lo, clip_hi, depth = stack.pop()
        visits += 1
        start = base + mr.addr
        end = start + mr.size
        lo, hi = max(start, clip_lo), min(end, clip_hi)
        if lo >= hi:
            continue
        out.append(Placement(mr, start, end, clip_lo, clip_hi))
        if depth > MAX_DEPTH:
            continue
        if mr.kind is RegionKind.ALIAS:
            target = mr.alias_target
            assert target is not None
            stack.append((target, start - target.addr - mr.alias_offset, lo, hi, depth + 1))
        else:
            for child in mr.subregions:
                stack.append((child, start, lo, hi, depth + 1))
    return tuple(out)
