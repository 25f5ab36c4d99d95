"""AddressSpace: a named root, its current FlatView, its listeners, and accesses."""

from __future__ import annotations

from flatview.diff import diff_views
from flatview.errors import AccessError, RegionError
from flatview.flatrange import FlatRange, FlatView
from flatview.region import MemoryRegion, RegionKind
from flatview.section import MemoryRegionSection
from listeners.protocol import MemoryListener, supports_resize

_MAX_MMIO_ACCESS = 8


class AddressSpace:
    """Renders ``root`` (sharing the FlatView with spaces whose roots resolve alike)."""

    def __init__(self, root: MemoryRegion, name: str) -> None:
        self.root = root
        self.name = name
        self.system = root.system
        self._listeners: list[MemoryListener] = []
        self._view: FlatView = FlatView(())
        self._view = self.system._add_space(self)

    @property
    def flatview(self) -> FlatView:
        """The current, immutable view (replaced as a whole at each commit)."""
        return self._view

    @property
    def listeners(self) -> tuple[MemoryListener, ...]:
        return tuple(self._listeners)

    def destroy(self) -> None:
        """Unregister every listener (each gets its ranges deleted), then the space."""
        for listener in list(reversed(self._listeners)):
            self.remove_listener(listener)
        self.system._remove_space(self)

    # -- listeners ------------------------------------------------------------------
    def add_listener(self, listener: MemoryListener) -> None:
        """Register ``listener``; it gets the current state replayed at once."""
        if listener in self._listeners:
            raise RegionError(f"listener {listener!r} is already registered on {self.name!r}")
        i = len(self._listeners)
        while i > 0 and self._listeners[i - 1].priority > listener.priority:
            i -= 1
        self._listeners.insert(i, listener)
        self.system._add_listener(listener)
        listener.begin()
        if self.system.global_dirty_log:
            listener.log_global_start()
        for fr in self._view:
            section = self.section(fr)
            listener.region_add(section)
            if fr.dirty_log_mask:
                listener.log_start(section, 0, fr.dirty_log_mask)
        listener.commit()

    def remove_listener(self, listener: MemoryListener) -> None:
        """Unregister ``listener``; it gets every current range deleted."""
        if listener not in self._listeners:
            raise RegionError(f"listener {listener!r} is not registered on {self.name!r}")
        listener.begin()
        for fr in self._view:
            listener.region_del(self.section(fr))
        listener.commit()
        self._listeners.remove(listener)
        self.system._remove_listener(listener)

    def section(self, fr: FlatRange) -> MemoryRegionSection:
        return MemoryRegionSection.from_range(self, fr)

    def _publish(self, new: FlatView) -> None:
        """Diff the old view against ``new``, notify listeners range-major, then publish."""
        old = self._view
        fwd = self._listeners
        if fwd:
            d = diff_views(old, new)
            rev = fwd[::-1]
            resized = d.resized_old
            for fr in d.removed:
                sec = self.section(fr)
                skip_resizers = id(fr) in resized
                for listener in rev:
                    if not (skip_resizers and supports_resize(listener)):
                        listener.region_del(sec)
            for u in d.updates:
                sec = self.section(u.new)
                if u.kind == "nop":
                    assert u.old is not None
                    for listener in fwd:
                        listener.region_nop(sec)
                    om, nm = u.old.dirty_log_mask, u.new.dirty_log_mask
                    if nm & ~om:
                        for listener in fwd:
                            listener.log_start(sec, om, nm)
                    if om & ~nm:
                        for listener in rev:
                            listener.log_stop(sec, om, nm)
                elif u.kind == "resize":
                    assert u.old is not None
                    old_sec = self.section(u.old)
                    for listener in fwd:
                        if supports_resize(listener):
                            listener.region_resize(old_sec, sec)
                        else:
                            listener.region_add(sec)
                else:
                    for listener in fwd:
                        listener.region_add(sec)
        self._view = new

    def log_sync(self) -> None:
        """Ask listeners to pull dirty bits for every logged range."""
        for fr in self._view:
            if fr.dirty_log_mask:
                sec = self.section(fr)
                for listener in self._listeners:
                    listener.log_sync(sec)

    # -- accesses for device models ------------------------------------------------
    def _pieces(self, addr: int, size: int) -> list[tuple[FlatRange, int, int, int]]:
        """(range, offset in region, length, offset in the access) covering the access."""
        if addr < 0 or size < 0 or addr + size > 2**64:
            raise AccessError(
                f"{self.name}: access [{addr:#x}, +{size:#x}) out of range", addr, size
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
        buf = bytearray(size)
        for fr, off, n, pos in self._pieces(addr, size):
            mr = fr.region
            if mr.is_ram or (mr.kind is RegionKind.ROM_DEVICE and fr.romd_mode):
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
            else:
                assert mr.ops is not None
                for k in range(0, n, _MAX_MMIO_ACCESS):
                    piece = chunk[k : k + _MAX_MMIO_ACCESS]
                    mr.ops.write(off + k, len(piece), int.from_bytes(piece, "little"))
        return dropped
