"""AddressSpace: a named root, its current FlatView, its listeners, and accesses."""

from __future__ import annotations

from collections.abc import Sequence

from flatview.diff import ViewDiff, diff_views
from flatview.errors import AccessError, RegionError
from flatview.flatrange import FlatRange, FlatView
from flatview.listener import Bound, MemoryListener
from flatview.placement import Placement, placements
from flatview.region import ADDR_SPACE_END, MemoryRegion
from flatview.section import MemoryRegionSection
from flatview.system import MemorySystem

_MAX_MMIO_ACCESS = 8
MAX_ACCESS = 1 << 30
"""The most bytes one ``read``/``write`` call may move."""


def _each(
    listeners: Sequence[Bound], callback: str, errors: list[Exception], *args: object
) -> None:
    """Call ``callback`` on each listener in order; errors are collected, not raised."""
    for listener in listeners:
        try:
            getattr(listener, callback)(*args)
        except Exception as e:
            errors.append(e)


class AddressSpace:
    """Renders ``root`` (sharing the FlatView with spaces whose roots resolve alike)."""

    def __init__(self, root: MemoryRegion, name: str) -> None:
        system = root.system
        if not isinstance(system, MemorySystem):
            raise RegionError(f"address space {name!r}: root {root.name!r} has no MemorySystem")
        self._root = root
        self.name = name
        self.system = system
        self._placements: tuple[int, tuple[Placement, ...]] | None = None
        self._cell = system._add_space(self)

    @property
    def root(self) -> MemoryRegion:
        return self._root

    def __repr__(self) -> str:
        return f"<AddressSpace {self.name!r} root={self._root.name!r} ranges={len(self._view)}>"

    def __str__(self) -> str:
        """The space's view as ``info mtree -f`` prints it."""
        return f'AS "{self.name}", root: {self._root.name}\n{self._view}'

    @property
    def flatview(self) -> FlatView:
        """The current, immutable view (replaced as a whole at each commit)."""
        return self._cell.view

    @property
    def _view(self) -> FlatView:
        return self._cell.view

    @property
    def listeners(self) -> tuple[MemoryListener, ...]:
        """This space's listeners, in ascending priority (from the system's registry)."""
        return self.system.listeners_of(self)

    def placements(self, lo: int = 0, hi: int = ADDR_SPACE_END) -> tuple[Placement, ...]:
        """Where every region of the tree sits (:mod:`flatview.placement`): all of it
        cached until the next change of structure, or only what shows in ``[lo, hi)``
        (computed on each call, in time proportional to that part of the tree)."""
        if (lo, hi) != (0, ADDR_SPACE_END):
            return placements(self._root, lo=lo, hi=hi)
        gen = self.system.structure_generation
        if self._placements is None or self._placements[0] != gen:
            self._placements = (gen, placements(self._root))
        return self._placements[1]

    def destroy(self) -> None:
        """Unregister every listener (each gets its ranges deleted), then the space.
        The space is gone even if a listener's teardown raises (the first error is
        raised after all are unregistered)."""
        error: Exception | None = None
        for listener in reversed(self.listeners):
            try:
                self.remove_listener(listener)
            except Exception as e:
                error = error or e
        self.system._remove_space(self)
        if error is not None:
            raise error

    # -- listeners ------------------------------------------------------------------
    def add_listener(self, listener: MemoryListener) -> None:
        """Register ``listener``; it gets the current state replayed at once
        (begin, region_add and log_start per range, commit).

        If the replay raises, the listener is not registered and the error is
        raised: a listener whose ``commit`` failed must have undone what it did.
        """
        if listener in self.listeners:
            raise RegionError(f"listener {listener!r} is already registered on {self.name!r}")
        self.system._check_mutable(f"add_listener({self.name!r})")
        bound = self.system._register(listener, self)
        try:
            bound.begin()
            if self.system.global_dirty_log:
                bound.log_global_start()
            for fr in self._view:
                section = self.section(fr)
                bound.region_add(section)
                if fr.dirty_log_mask:
                    bound.log_start(section, 0, fr.dirty_log_mask)
            bound.commit()
        except BaseException:
            self.system._unregister(listener, self)
            raise

    def remove_listener(self, listener: MemoryListener) -> None:
        """Unregister ``listener``; it gets every current range deleted (begin,
        region_del per range, commit).  It is unregistered even if that raises."""
        if listener not in self.listeners:
            raise RegionError(f"listener {listener!r} is not registered on {self.name!r}")
        self.system._check_mutable(f"remove_listener({self.name!r})")
        bound = next(b for b in self.system.bound_of(self) if b.target is listener)
        try:
            bound.begin()
            for fr in self._view:
                bound.region_del(self.section(fr))
            bound.commit()
        finally:
            self.system._unregister(listener, self)

    def section(self, fr: FlatRange) -> MemoryRegionSection:
        return MemoryRegionSection(self, fr)

    def _notify(
        self,
        old: FlatView,
        new: FlatView,
        errors: list[Exception],
        diff: ViewDiff[FlatRange] | None = None,
    ) -> None:
        """Diff ``old`` against ``new`` and notify listeners range-major (the system
        publishes ``new`` afterwards, once for every space that shares it).

        ``diff``, from a windowed re-render, lacks the nops outside the changed
        windows: it is used unless a listener implements ``region_nop`` (then the
        full diff runs, so every listener sees exactly QEMU's stream).  A callback
        that raises does not stop the others: its error is appended to ``errors``
        (the system raises the first one once every listener committed).
        """
        fwd = self.system.bound_of(self)
        if not fwd:
            return
        d = diff if diff is not None and not any(b.nops for b in fwd) else None
        if d is None:
            d = diff_views(old, new)
        rev = fwd[::-1]
        resized = d.resized_old
        for fr in d.removed:
            sec = self.section(fr)
            skip_resizers = id(fr) in resized
            for listener in rev:
                if not (skip_resizers and listener.resize):
                    try:
                        listener.region_del(sec)
                    except Exception as e:
                        errors.append(e)
        for u in d.updates:
            sec = self.section(u.new)
            for listener in fwd:
                try:
                    if u.kind == "nop":
                        listener.region_nop(sec)
                    elif u.kind == "resize" and listener.resize:
                        assert u.old is not None
                        listener.region_resize(self.section(u.old), sec)
                    else:
                        listener.region_add(sec)
                except Exception as e:
                    errors.append(e)
            if u.kind != "nop":
                continue
            assert u.old is not None
            om, nm = u.old.dirty_log_mask, u.new.dirty_log_mask
            if nm & ~om:
                _each(fwd, "log_start", errors, sec, om, nm)
            if om & ~nm:
                _each(rev, "log_stop", errors, sec, om, nm)

    def log_sync(self) -> None:
        """Ask listeners to pull dirty bits for every logged range."""
        for fr in self._view:
            if fr.dirty_log_mask:
                sec = self.section(fr)
                for listener in self.system.bound_of(self):
                    listener.log_sync(sec)

    # -- accesses for device models ------------------------------------------------
    def _pieces(self, addr: int, size: int) -> list[tuple[FlatRange, int, int, int]]:
        """(range, offset in region, length, offset in the access) covering the access."""
        if not isinstance(addr, int) or not isinstance(size, int):
            raise AccessError(f"{self.name}: address and size must be integers", 0, 0)
        if addr < 0 or size < 0 or addr + size > 2**64:
            raise AccessError(
                f"{self.name}: access [{addr:#x}, +{size:#x}) out of range", addr, size
            )
        if size > MAX_ACCESS:
            raise AccessError(
                f"{self.name}: access of {size:#x} bytes at {addr:#x} is larger than "
                f"{MAX_ACCESS:#x} (split it)",
                addr,
                size,
            )
        out = []
        cur, done = addr, 0
        view = self._view
        while done < size:
            fr = view.lookup(cur)
            if fr is None:
                raise AccessError(f"{self.name}: unassigned address {cur:#x}", cur, size - done)
            n = min(size - done, fr.end - cur)
            out.append((fr, fr.offset_in_region + (cur - fr.addr), n, done))
            cur += n
            done += n
        return out

    def read(self, addr: int, size: int) -> bytes:
        """Read guest-physical memory: RAM from its block, MMIO through its ops."""
        pieces = self._pieces(addr, size)
        buf = bytearray(size)
        for fr, off, n, pos in pieces:
            mr = fr.region
            if fr.ram_readable:
                assert mr.ram_block is not None
                buf[pos : pos + n] = mr.ram_block.read(off, n)
            else:
                assert mr.ops is not None
                for k in range(0, n, _MAX_MMIO_ACCESS):
                    width = min(_MAX_MMIO_ACCESS, n - k)
                    value = mr.ops.read(off + k, width) & ((1 << (8 * width)) - 1)
                    buf[pos + k : pos + k + width] = value.to_bytes(width, "little")
        return bytes(buf)

    def write(self, addr: int, data: bytes) -> int:
        """Write guest-physical memory; returns how many bytes were dropped because
        the range is read-only (ROM, a read-only alias), as a guest write would be."""
        dropped = 0
        for fr, off, n, pos in self._pieces(addr, len(data)):
            mr = fr.region
            chunk = data[pos : pos + n]
            if mr.is_ram:
                if fr.readonly:
                    dropped += n
                    continue
                assert mr.ram_block is not None
                mr.ram_block.write(off, chunk)
                if fr.dirty_log_mask:
                    mr.ram_block.dirty.mark(off, n, fr.dirty_log_mask)
            else:
                assert mr.ops is not None
                for k in range(0, n, _MAX_MMIO_ACCESS):
                    piece = chunk[k : k + _MAX_MMIO_ACCESS]
                    mr.ops.write(off + k, len(piece), int.from_bytes(piece, "little"))
        return dropped
