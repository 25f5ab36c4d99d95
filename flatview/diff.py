"""The topology diff between two FlatViews, in QEMU's two passes.

Pass 1 lists the removed old ranges; pass 2 walks the new view and says, per
range, ``nop`` (same mapping; the dirty mask may differ) or ``add``.  On top of
QEMU, an old and a new range that differ only in size (same region, start,
offset, attributes and dirty mask) are paired as a ``resize``: listeners that
implement ``region_resize`` get that one call instead of del + add.

The walk is written once, for any address-sorted sequence of non-overlapping
ranges that can say whether two of them map alike (:class:`Comparable`): the
CLI diffs QEMU's dumped ranges with it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, Literal, Protocol, Self, TypeVar

import attrs

from flatview.flatrange import FlatRange, FlatView

UpdateKind = Literal["add", "nop", "resize"]


class Comparable(Protocol):
    @property
    def addr(self) -> int: ...

    def same_mapping(self, other: Self, /) -> bool: ...

    def is_resize_of(self, old: Self, /) -> bool: ...


R = TypeVar("R", bound=Comparable)


@attrs.frozen(slots=True)
class RangeUpdate(Generic[R]):
    """One pass-2 step: ``old`` is set for ``nop`` and ``resize``."""

    kind: UpdateKind
    new: R
    old: R | None = None


@attrs.frozen(slots=True)
class ViewDiff(Generic[R]):
    removed: tuple[R, ...]
    """Pass 1, in address order (includes the old side of every resize)."""
    updates: tuple[RangeUpdate[R], ...]
    """Pass 2, in address order of the new view."""

    @property
    def resized_old(self) -> frozenset[int]:
        """ids of removed ranges that are the old side of a resize."""
        return frozenset(id(u.old) for u in self.updates if u.kind == "resize")


def diff_ranges(o: Sequence[R], n: Sequence[R]) -> ViewDiff[R]:
    """Compare two address-sorted range lists as QEMU's update_topology_pass does."""
    removed: list[R] = []
    updates: list[RangeUpdate[R]] = []
    removed_at: dict[int, R] = {}
    added: list[int] = []
    i = j = 0
    while i < len(o) or j < len(n):
        fo = o[i] if i < len(o) else None
        fn = n[j] if j < len(n) else None
        if fo is not None and (
            fn is None or fo.addr < fn.addr or (fo.addr == fn.addr and not fo.same_mapping(fn))
        ):
            removed.append(fo)
            removed_at[fo.addr] = fo
            i += 1
        elif fo is not None and fn is not None and fo.same_mapping(fn):
            updates.append(RangeUpdate("nop", fn, fo))
            i += 1
            j += 1
        else:
            assert fn is not None
            added.append(len(updates))
            updates.append(RangeUpdate("add", fn))
            j += 1
    for k in added:
        fn = updates[k].new
        fo = removed_at.get(fn.addr)
        if fo is not None and fn.is_resize_of(fo):
            updates[k] = RangeUpdate("resize", fn, fo)
    return ViewDiff(tuple(removed), tuple(updates))


def diff_views(old: FlatView, new: FlatView) -> ViewDiff[FlatRange]:
    """Compare two views as QEMU's address_space_update_topology_pass does."""
    return diff_ranges(old.ranges, new.ranges)
