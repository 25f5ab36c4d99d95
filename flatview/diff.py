"""The topology diff between two FlatViews, in QEMU's two passes.

Pass 1 lists the removed old ranges; pass 2 walks the new view and says, per
range, ``nop`` (same mapping; the dirty mask may differ) or ``add``.  On top of
QEMU, an old and a new range that differ only in size (same region, start,
offset, attributes and dirty mask) are paired as a ``resize``: listeners that
implement ``region_resize`` get that one call instead of del + add.
"""

from __future__ import annotations

from typing import Literal

import attrs

from flatview.flatrange import FlatRange, FlatView

UpdateKind = Literal["add", "nop", "resize"]


@attrs.frozen(slots=True)
class RangeUpdate:
    """One pass-2 step: ``old`` is set for ``nop`` and ``resize``."""

    kind: UpdateKind
    new: FlatRange
    old: FlatRange | None = None


@attrs.frozen(slots=True)
class ViewDiff:
    removed: tuple[FlatRange, ...]
    """Pass 1, in address order (includes the old side of every resize)."""
    updates: tuple[RangeUpdate, ...]
    """Pass 2, in address order of the new view."""

    @property
    def resized_old(self) -> frozenset[int]:
        """ids of removed ranges that are the old side of a resize."""
        return frozenset(id(u.old) for u in self.updates if u.kind == "resize")

    @property
    def changed(self) -> bool:
        return bool(self.removed) or any(u.kind != "nop" for u in self.updates)


def _resize_pair(old: FlatRange, new: FlatRange) -> bool:
    return (
        old.region is new.region
        and old.addr == new.addr
        and old.offset_in_region == new.offset_in_region
        and old.size != new.size
        and old.readonly == new.readonly
        and old.romd_mode == new.romd_mode
        and old.nonvolatile == new.nonvolatile
        and old.unmergeable == new.unmergeable
        and old.dirty_log_mask == new.dirty_log_mask
    )


def diff_views(old: FlatView, new: FlatView) -> ViewDiff:
    """Compare two views as QEMU's address_space_update_topology_pass does."""
    o, n = old.ranges, new.ranges
    removed: list[FlatRange] = []
    updates: list[RangeUpdate] = []
    removed_at: dict[int, FlatRange] = {}
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
        if fo is not None and _resize_pair(fo, fn):
            updates[k] = RangeUpdate("resize", fn, fo)
    return ViewDiff(tuple(removed), tuple(updates))
