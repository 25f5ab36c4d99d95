"""FlatRange and FlatView: the rendered, immutable guest-physical map."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator

import attrs

from flatview.region import MemoryRegion, RegionKind


@attrs.frozen(slots=True)
class FlatRange:
    """A piece of one region visible at ``[addr, addr + size)``."""

    addr: int
    size: int
    region: MemoryRegion
    offset_in_region: int
    readonly: bool = False
    romd_mode: bool = False
    nonvolatile: bool = False
    unmergeable: bool = False
    dirty_log_mask: int = 0

    @property
    def end(self) -> int:
        return self.addr + self.size

    def _same_place(self, other: FlatRange) -> bool:
        """Same region at the same start and offset, with the same attributes."""
        return (
            self.region is other.region
            and self.addr == other.addr
            and self.offset_in_region == other.offset_in_region
            and self.romd_mode == other.romd_mode
            and self.readonly == other.readonly
            and self.nonvolatile == other.nonvolatile
            and self.unmergeable == other.unmergeable
        )

    def same_mapping(self, other: FlatRange) -> bool:
        """QEMU's ``flatrange_equal``: everything but the dirty-log mask."""
        return self.size == other.size and self._same_place(other)

    def is_resize_of(self, old: FlatRange) -> bool:
        """``old`` with only its size changed (dirty mask included): a region_resize."""
        return (
            self.size != old.size
            and self.dirty_log_mask == old.dirty_log_mask
            and self._same_place(old)
        )

    @property
    def ram_readable(self) -> bool:
        """Reads are served from the region's RAM block (RAM, ROM, RAM device, or a
        ROM device in romd mode); everything else goes to the region's ops."""
        return self.region.is_ram or (self.region.kind is RegionKind.ROM_DEVICE and self.romd_mode)

    @property
    def ram_writable(self) -> bool:
        """Writes land in the RAM block (RAM-kind region, range not read-only)."""
        return self.region.is_ram and not self.readonly

    def can_merge(self, nxt: FlatRange) -> bool:
        """QEMU's simplify rule: may ``nxt`` (just after ``self``) be merged into it?"""
        return (
            self.end == nxt.addr
            and self.region is nxt.region
            and self.offset_in_region + self.size == nxt.offset_in_region
            and self.dirty_log_mask == nxt.dirty_log_mask
            and self.romd_mode == nxt.romd_mode
            and self.readonly == nxt.readonly
            and self.nonvolatile == nxt.nonvolatile
            and not self.unmergeable
            and not nxt.unmergeable
        )

    def sliced(self, lo: int, hi: int) -> FlatRange:
        """The part ``[lo, hi)`` of this range."""
        return attrs.evolve(
            self, addr=lo, size=hi - lo, offset_in_region=self.offset_in_region + lo - self.addr
        )

    def merged(self, nxt: FlatRange) -> FlatRange:
        """This range extended over ``nxt`` (only where :meth:`can_merge` allows)."""
        return attrs.evolve(self, size=nxt.end - self.addr)

    def mtree_type(self) -> str:
        """TYPE as ``info mtree -f`` prints it: ``rom`` for any read-only range."""
        prefix = "nv-" if self.nonvolatile else ""
        return prefix + ("rom" if self.readonly else self.region.mtree_type())


def merge_adjacent(ranges: Iterable[FlatRange]) -> list[FlatRange]:
    """Address-sorted ranges with neighbours merged wherever QEMU's rule allows."""
    out: list[FlatRange] = []
    for r in ranges:
        if out and out[-1].can_merge(r):
            out[-1] = out[-1].merged(r)
        else:
            out.append(r)
    return out


@attrs.frozen(slots=True)
class FlatView:
    """An address-sorted tuple of non-overlapping FlatRanges, looked up with bisect."""

    ranges: tuple[FlatRange, ...] = ()
    _starts: tuple[int, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_starts", tuple(r.addr for r in self.ranges))

    @classmethod
    def _from_sorted(cls, ranges: tuple[FlatRange, ...], starts: tuple[int, ...]) -> FlatView:
        """A view from ranges and their start addresses, already computed (a splice)."""
        view = object.__new__(cls)
        object.__setattr__(view, "ranges", ranges)
        object.__setattr__(view, "_starts", starts)
        return view

    def __len__(self) -> int:
        return len(self.ranges)

    def __iter__(self) -> Iterator[FlatRange]:
        return iter(self.ranges)

    def lookup(self, addr: int) -> FlatRange | None:
        """The range containing ``addr``, or None in a hole."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0:
            r = self.ranges[i]
            if addr < r.end:
                return r
        return None
