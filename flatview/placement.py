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

from flatview.region import ADDR_SPACE_END, MemoryRegion

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

    def __repr__(self) -> str:
        return (
            f"Placement({self.region.name!r}, start={self.start:#x}, end={self.end:#x}, "
            f"lo={self.lo:#x}, hi={self.hi:#x})"
        )


def placements(
    root: MemoryRegion | None,
    *,
    lo: int = 0,
    hi: int = ADDR_SPACE_END,
    limit: int = 100_000,
) -> tuple[Placement, ...]:
    """Every visible placement of every region under ``root`` inside ``[lo, hi)``,
    depth first (windows clipped to it).  ``limit`` bounds the walk for
    pathological trees (aliases shown many times)."""
    out: list[Placement] = []
    if root is None:
        return ()
    stack: list[tuple[MemoryRegion, int, int, int, int]] = [(root, 0, lo, hi, 0)]
    visits = 0
    pop, push, add = stack.pop, stack.append, out.append
    while stack and visits < limit:
        mr, base, clip_lo, clip_hi, depth = pop()
        visits += 1
        start = base + mr._addr
        end = start + mr._size
        if (start if start > clip_lo else clip_lo) >= (end if end < clip_hi else clip_hi):
            continue  # outside the window its ancestors leave it
        add(Placement(mr, start, end, clip_lo, clip_hi))
        if depth > MAX_DEPTH:
            continue
        lo = start if start > clip_lo else clip_lo
        hi = end if end < clip_hi else clip_hi
        target = mr._alias_target
        if target is not None:
            push((target, start - target._addr - mr._alias_offset, lo, hi, depth + 1))
        else:
            for child in mr._children_in(lo - start, hi - start):
                push((child, start, lo, hi, depth + 1))
    return tuple(out)
