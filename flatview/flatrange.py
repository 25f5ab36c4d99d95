"""FlatRange and FlatView: the rendered, immutable guest-physical map."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence

import attrs

from flatview.region import MemoryRegion, RegionKind


@attrs.frozen(slots=True)
class FlatRange:
    """A piece of one region visible at ``[addr, addr + size)``."""

    addr: int = attrs.field(repr=hex)
    size: int = attrs.field(repr=hex)
    region: MemoryRegion
    offset_in_region: int = attrs.field(repr=hex)
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

    def __str__(self) -> str:
        """The range as ``info mtree -f`` prints it (the leaf's priority)."""
        off = f" @{self.offset_in_region:016x}" if self.offset_in_region else ""
        return (
            f"{self.addr:016x}-{self.end - 1:016x} (prio {self.region.priority}, "
            f"{self.mtree_type()}): {self.region.name}{off}"
        )


def merge_adjacent(ranges: Iterable[FlatRange]) -> list[FlatRange]:
    """Address-sorted ranges with neighbours merged wherever QEMU's rule allows."""
    out: list[FlatRange] = []
    for r in ranges:
        if out and out[-1].can_merge(r):
            out[-1] = out[-1].merged(r)
        else:
            out.append(r)
    return out


CHUNK = 256
"""Ranges per chunk of a :class:`FlatView` (a re-chunked stretch gets this many)."""

_Chunk = tuple[tuple[FlatRange, ...], tuple[int, ...]]
"""A chunk's ranges and their start addresses."""


def _chunked(ranges: Sequence[FlatRange]) -> list[_Chunk]:
    out = []
    for k in range(0, len(ranges), CHUNK):
        part = tuple(ranges[k : k + CHUNK])
        out.append((part, tuple(r.addr for r in part)))
    return out


@attrs.frozen(slots=True, init=False, eq=False, repr=False)
class FlatView:
    """An immutable, address-sorted sequence of non-overlapping FlatRanges.

    Stored as chunks of ranges (each with the tuple of its start addresses), looked
    up by bisection over the chunks' first addresses, then inside one chunk.  A
    commit that re-renders a few windows builds its new view with :meth:`spliced`,
    which shares every chunk the windows do not touch: its cost is the number of
    chunks plus the ranges of the touched ones, not the size of the view.  Views
    compare equal when their ranges are.  ``ranges`` (one tuple of all ranges) is
    built on first use and kept.
    """

    _chunks: tuple[_Chunk, ...]
    _firsts: tuple[int, ...]
    """The first address of each chunk."""
    _offsets: tuple[int, ...]
    """The index (in the whole view) of each chunk's first range."""
    _len: int
    _flat: list[tuple[FlatRange, ...]]
    """The cache of ``ranges`` (empty until first used)."""

    def __init__(self, ranges: Iterable[FlatRange] = ()) -> None:
        self._init(_chunked(tuple(ranges)))

    def _init(self, chunks: list[_Chunk]) -> None:
        offsets, n = [], 0
        for part, _ in chunks:
            offsets.append(n)
            n += len(part)
        self.__attrs_init__(tuple(chunks), tuple(st[0] for _, st in chunks), tuple(offsets), n, [])

    @property
    def ranges(self) -> tuple[FlatRange, ...]:
        if not self._flat:
            self._flat.append(tuple(r for part, _ in self._chunks for r in part))
        return self._flat[0]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FlatView):
            return NotImplemented
        return self._len == other._len and self.ranges == other.ranges

    def __hash__(self) -> int:
        return hash(self.ranges)

    def __repr__(self) -> str:
        return f"FlatView(ranges={self.ranges!r})"

    def __str__(self) -> str:
        """One line per range, as ``info mtree -f`` prints them."""
        return "\n".join(f"  {r}" for r in self) or "  No rendered FlatView"

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[FlatRange]:
        for part, _ in self._chunks:
            yield from part

    def lookup(self, addr: int) -> FlatRange | None:
        """The range containing ``addr``, or None in a hole."""
        c = bisect.bisect_right(self._firsts, addr) - 1
        if c >= 0:
            part, starts = self._chunks[c]
            r = part[bisect.bisect_right(starts, addr) - 1]
            if addr < r.end:
                return r
        return None

    # -- index-based access, for splicing --------------------------------------------
    def bisect_right(self, addr: int) -> int:
        """How many ranges start at or below ``addr``."""
        c = bisect.bisect_right(self._firsts, addr) - 1
        if c < 0:
            return 0
        return self._offsets[c] + bisect.bisect_right(self._chunks[c][1], addr)

    def bisect_left(self, addr: int) -> int:
        """How many ranges start below ``addr``."""
        c = bisect.bisect_left(self._firsts, addr) - 1
        if c < 0:
            return 0
        return self._offsets[c] + bisect.bisect_left(self._chunks[c][1], addr)

    def at(self, i: int) -> FlatRange:
        """The ``i``-th range (0 <= i < len)."""
        c = bisect.bisect_right(self._offsets, i) - 1
        return self._chunks[c][0][i - self._offsets[c]]

    def slice(self, a: int, b: int) -> list[FlatRange]:
        """Ranges ``a`` to ``b`` (exclusive), by index."""
        if a >= b:
            return []
        out: list[FlatRange] = []
        c = bisect.bisect_right(self._offsets, a) - 1
        while c < len(self._chunks) and self._offsets[c] < b:
            off = self._offsets[c]
            part = self._chunks[c][0]
            out.extend(part[max(a - off, 0) : b - off])
            c += 1
        return out

    def spliced(self, edits: Sequence[tuple[int, int, Sequence[FlatRange]]]) -> FlatView:
        """A new view: for each ``(a, b, new)`` (sorted by index, disjoint), ranges
        ``a`` to ``b`` replaced by ``new``.  Only the chunks the edits touch are
        rebuilt (a rebuilt stretch shorter than half a chunk takes its right
        neighbour in, so chunks stay large); the others are shared."""
        if not self._chunks:
            return FlatView(r for _, _, new in edits for r in new)
        offsets, nch = self._offsets, len(self._chunks)

        def chunk_of(i: int) -> int:  # the chunk holding index i (the view's end: the last)
            return min(bisect.bisect_right(offsets, i) - 1, nch - 1)

        runs: list[tuple[int, int, list[tuple[int, int, Sequence[FlatRange]]]]] = []
        for a, b, new in edits:
            c0, c1 = chunk_of(a), chunk_of(max(b - 1, a)) + 1
            if runs and c0 < runs[-1][1]:  # shares a chunk with the previous run
                p0, p1, es = runs.pop()
                runs.append((p0, max(p1, c1), [*es, (a, b, new)]))
            else:
                runs.append((c0, c1, [(a, b, new)]))
        chunks: list[_Chunk] = []
        c = 0
        for k, (c0, c1, es) in enumerate(runs):
            c0 = max(c0, c)  # a neighbour taken in by the previous run
            chunks.extend(self._chunks[c:c0])
            stretch: list[FlatRange] = []
            at = offsets[c0]
            for a, b, new in es:
                stretch.extend(self.slice(at, a))
                stretch.extend(new)
                at = b
            stretch.extend(self.slice(at, offsets[c1] if c1 < nch else self._len))
            nxt = runs[k + 1][0] if k + 1 < len(runs) else nch
            if len(stretch) < CHUNK // 2 and c1 < nch and c1 < nxt:
                stretch.extend(self._chunks[c1][0])
                c1 += 1
            chunks.extend(_chunked(stretch))
            c = c1
        chunks.extend(self._chunks[c:])
        view = object.__new__(FlatView)
        view._init(chunks)
        return view
