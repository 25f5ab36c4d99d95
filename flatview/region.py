"""MemoryRegion: the nodes of the memory tree, with QEMU's kinds and mutations.

Regions belong to a :class:`~flatview.system.MemorySystem`, which owns the
transaction state; every mutation is wrapped in a transaction and marks an update
pending exactly when QEMU would.  Invalid input raises :class:`RegionError`
before anything is changed.
"""

from __future__ import annotations

import bisect
import enum
import itertools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

import attrs

from flatview.child_index import ChildIndex, render_key
from flatview.dirty import DirtyLogClient, DirtySnapshot
from flatview.errors import RegionError
from flatview.hostmem import HostMemoryError, RamBlock, page_align_up

_insertions = itertools.count(1)

INDEXED = 32
"""Containers with more children than this find the children a window meets
through an index by address (renders and placement walks of partial windows)."""


class RegionOwner(Protocol):
    """What a region needs from the :class:`~flatview.system.MemorySystem` that made it:
    transactions around each mutation, and the global dirty-log switch."""

    @property
    def global_dirty_log(self) -> bool: ...

    def transaction(self) -> AbstractContextManager[object]: ...

    def _check_mutable(self, where: str) -> None: ...

    def _mark_pending(self) -> None: ...

    def _structure_changed(self) -> None: ...

    def _damage(self, mr: MemoryRegion) -> None: ...

    @property
    def _alias_generation(self) -> int: ...


ADDR_SPACE_END = 2**64
"""Regions may be up to 2**64 bytes: a root container spans the whole 64-bit space."""


class RegionKind(enum.Enum):
    CONTAINER = "container"
    RAM = "ram"
    ROM = "rom"
    RAM_DEVICE = "ram_device"
    ROM_DEVICE = "rom_device"
    MMIO = "mmio"
    ALIAS = "alias"

    @property
    def terminates(self) -> bool:
        """A leaf: it fills the holes its children leave (QEMU's ``terminates``)."""
        return self not in (RegionKind.CONTAINER, RegionKind.ALIAS)

    @property
    def has_ram_block(self) -> bool:
        """Backed by a host memory block (every leaf but MMIO)."""
        return self.terminates and self is not RegionKind.MMIO

    @property
    def is_ram(self) -> bool:
        """Always read from its block (QEMU's ``memory_region_is_ram``)."""
        return self in (RegionKind.RAM, RegionKind.ROM, RegionKind.RAM_DEVICE)

    @property
    def migratable(self) -> bool:
        """Logged by global (migration) dirty logging."""
        return self in (RegionKind.RAM, RegionKind.ROM, RegionKind.ROM_DEVICE)


MmioRead = Callable[[int, int], int]
"""``read(offset, size) -> value`` (little-endian value of ``size`` bytes)."""
MmioWrite = Callable[[int, int, int], None]
"""``write(offset, size, value)``."""


def _unassigned_read(offset: int, size: int) -> int:
    return 0


def _ignore_write(offset: int, size: int, value: int) -> None:
    return None


@attrs.frozen
class MmioOps:
    """Device callbacks for mmio and rom_device regions (accesses of 1..8 bytes)."""

    read: MmioRead = _unassigned_read
    write: MmioWrite = _ignore_write


def check_size(name: str, size: int) -> None:
    """Refuse a size that is not an integer in [0, 2**64] (RegionError)."""
    if not isinstance(size, int) or isinstance(size, bool):
        raise RegionError(f"region {name!r}: size must be an integer, got {size!r}")
    if size < 0:
        raise RegionError(f"region {name!r}: negative size {size}")
    if size > ADDR_SPACE_END:
        raise RegionError(f"region {name!r}: size {size:#x} is wider than the 64-bit space")


class MemoryRegion:
    """One node of the memory tree.  Create regions with the ``MemorySystem`` factories."""

    def __init__(
        self,
        system: RegionOwner,
        name: str,
        kind: RegionKind,
        size: int,
        *,
        ram_block: RamBlock | None = None,
        ops: MmioOps | None = None,
        alias_target: MemoryRegion | None = None,
        alias_offset: int = 0,
    ) -> None:
        check_size(name, size)
        self.system = system
        self.name = name
        self.kind = kind
        self._size = size
        self._addr = 0
        self._priority = 0
        self._enabled = True
        self._readonly = kind is RegionKind.ROM
        self._nonvolatile = False
        self._unmergeable = False
        self._romd_mode = kind is RegionKind.ROM_DEVICE
        self._log_counts: dict[DirtyLogClient, int] = {}
        self._log_mask = 0
        self._parent: MemoryRegion | None = None
        self._subregions: list[MemoryRegion] = []
        self._aliases: list[MemoryRegion] = []
        """The aliases that show this region (a reverse map kept by their constructor)."""
        self._opaque: tuple[int, list[MemoryRegion]] | None = None
        self._index: ChildIndex[MemoryRegion] | None = None
        self._live: ChildIndex[MemoryRegion] | None = None
        """The same for the enabled children only (what a render can see)."""
        """Built on the first windowed lookup, then kept up to date by every change."""
        self._seq = 0
        """When it was last added to a parent (render order among equal priorities)."""
        """Children sorted by address (starts, children, largest size, render position of
        each); None when stale."""
        """Cache of damage.places: the aliases that are not transparent tops."""
        self.ram_block = ram_block
        self.ops = ops
        self._alias_target = alias_target
        self._alias_offset = alias_offset
        if kind is RegionKind.ALIAS:
            if alias_target is None:
                raise RegionError(f"alias {name!r}: no target")
            if alias_target.system is not system:
                raise RegionError(
                    f"alias {name!r}: target {alias_target.name!r} is in another system"
                )
            self._check_alias_window(alias_offset, size)
            alias_target._aliases.append(self)

    # -- read-only attributes --------------------------------------------------
    @property
    def size(self) -> int:
        return self._size

    @property
    def addr(self) -> int:
        """Offset inside the parent (QEMU's ``mr->addr``)."""
        return self._addr

    @property
    def priority(self) -> int:
        return self._priority

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def readonly(self) -> bool:
        return self._readonly

    @property
    def nonvolatile(self) -> bool:
        return self._nonvolatile

    @property
    def unmergeable(self) -> bool:
        return self._unmergeable

    @property
    def romd_mode(self) -> bool:
        return self._romd_mode

    @property
    def parent(self) -> MemoryRegion | None:
        return self._parent

    @property
    def subregions(self) -> tuple[MemoryRegion, ...]:
        """Children in render order: descending priority, newest first among equals."""
        return tuple(self._subregions)

    @property
    def aliases(self) -> tuple[MemoryRegion, ...]:
        """The aliases created with this region as their target."""
        return tuple(self._aliases)

    @property
    def alias_target(self) -> MemoryRegion | None:
        return self._alias_target

    @property
    def alias_offset(self) -> int:
        return self._alias_offset

    @property
    def terminates(self) -> bool:
        return self.kind.terminates

    @property
    def is_ram(self) -> bool:
        return self.kind.is_ram

    @property
    def has_ram_block(self) -> bool:
        return self.kind.has_ram_block

    @property
    def log_mask(self) -> int:
        """The region's own dirty-log bits (without the global migration bit)."""
        return self._log_mask

    def dirty_log_mask(self) -> int:
        """Mask a flat range of this region carries (QEMU's get_dirty_log_mask)."""
        mask = self._log_mask
        if self.system.global_dirty_log and self.kind.migratable:
            mask |= DirtyLogClient.MIGRATION
        return int(mask)

    def mtree_type(self) -> str:
        """The TYPE column of ``info mtree`` (QEMU's memory_region_type, no ``nv-`` prefix)."""
        if self.kind is RegionKind.ALIAS:
            assert self._alias_target is not None
            return self._alias_target.mtree_type()
        if self.kind is RegionKind.RAM_DEVICE:
            return "ramd"
        if self.kind is RegionKind.ROM_DEVICE and self._romd_mode:
            return "romd"
        if self.is_ram:
            return "rom" if self._readonly else "ram"
        return "i/o"

    def walk(self) -> Iterator[MemoryRegion]:
        """This region and its descendants (not alias targets), depth first."""
        yield self
        for child in self._subregions:
            yield from child.walk()

    # -- validation helpers ----------------------------------------------------
    def _check_alias_window(self, offset: int, size: int) -> None:
        target = self._alias_target
        assert target is not None
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise RegionError(f"alias {self.name!r}: offset must be an integer, got {offset!r}")
        if offset < 0:
            raise RegionError(f"alias {self.name!r}: negative offset {offset}")
        if offset + size > target.size:
            raise RegionError(
                f"alias {self.name!r}: window [{offset:#x}, {offset + size:#x}) runs past the end "
                f"of target {target.name!r} (size {target.size:#x})"
            )

    def _reaches(self, other: MemoryRegion) -> bool:
        """True if rendering ``self`` can reach ``other`` (through children or aliases)."""
        target = self._alias_target
        if not self._subregions and (
            target is None or (not target._subregions and target._alias_target is None)
        ):
            return self is other or target is other  # a leaf, or an alias of a leaf
        seen: set[int] = set()
        stack: list[MemoryRegion] = [self]
        while stack:
            mr = stack.pop()
            if mr is other:
                return True
            if id(mr) in seen:
                continue
            seen.add(id(mr))
            stack.extend(mr._subregions)
            if mr._alias_target is not None:
                stack.append(mr._alias_target)
        return False

    def _check_fits(self, offset: int, size: int, what: str) -> None:
        if not isinstance(offset, int) or offset < 0 or offset >= ADDR_SPACE_END:
            raise RegionError(f"{what}: offset {offset!r} outside the 64-bit space")
        if offset + size > ADDR_SPACE_END:
            raise RegionError(f"{what}: [{offset:#x}, +{size:#x}) is wider than the 64-bit space")

    # -- tree mutations --------------------------------------------------------
    def add_subregion(self, offset: int, child: MemoryRegion, priority: int = 0) -> None:
        """Map ``child`` at ``offset`` inside this region (QEMU's add_subregion_overlap)."""

        def fail(problem: str) -> RegionError:
            return RegionError(
                f"add_subregion({self.name!r}, {offset!r}, {child.name!r}): {problem}"
            )

        if child.system is not self.system:
            raise fail("regions belong to different systems")
        if child._parent is not None:
            raise fail(f"{child.name!r} already has parent {child._parent.name!r}")
        if self.kind is RegionKind.ALIAS:
            raise fail("an alias cannot have subregions")
        if child is self or child._reaches(self):
            raise fail("would create a cycle")
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise fail("priority must be an integer")
        if not isinstance(offset, int) or not 0 <= offset < ADDR_SPACE_END:
            raise fail(f"offset {offset!r} outside the 64-bit space")
        if offset + child._size > ADDR_SPACE_END:
            raise fail(f"[{offset:#x}, +{child._size:#x}) is wider than the 64-bit space")
        self.system._check_mutable("add_subregion")
        with self.system.transaction():
            child._priority = priority
            child._addr = offset
            self._insert_child(child)
            self.system._damage(child)
            self.system._structure_changed()
            if self._enabled and child._enabled:
                self.system._mark_pending()

    def _children_in(self, lo: int, hi: int) -> list[MemoryRegion]:
        """The children that may intersect ``[lo, hi)`` (offsets in this region), in
        render order: all of them for a small container or a window covering it, else
        found by address through the container's :class:`ChildIndex`."""
        if len(self._subregions) <= INDEXED or (lo <= 0 and hi >= self._size):
            return self._subregions
        if self._index is None:
            self._index = ChildIndex(self._subregions)
        found = self._index.find(lo, hi)
        return self._subregions if found is None else found

    def _enabled_children_in(self, lo: int, hi: int) -> list[MemoryRegion]:
        """As :meth:`_children_in`, but only enabled children are looked up by index
        (a window over many disabled children — BARs parked by firmware — costs
        nothing); callers still skip disabled ones in the full list."""
        if len(self._subregions) <= INDEXED or (lo <= 0 and hi >= self._size):
            return self._subregions
        if self._live is None:
            self._live = ChildIndex([c for c in self._subregions if c._enabled])
        found = self._live.find(lo, hi)
        return self._subregions if found is None else found

    def _insert_child(self, child: MemoryRegion) -> None:
        child._seq = next(_insertions)
        if self._index is not None:
            self._index.add(child)
        if self._live is not None and child._enabled:
            self._live.add(child)
        child._parent = self
        # render order: higher priority first, the newest first among equals
        i = bisect.bisect_left(self._subregions, render_key(child), key=render_key)
        self._subregions.insert(i, child)

    def del_subregion(self, child: MemoryRegion) -> None:
        if child._parent is not self:
            raise RegionError(
                f"del_subregion({self.name!r}, {child.name!r}): {child.name!r} is not a "
                f"subregion of {self.name!r}"
            )
        self.system._check_mutable("del_subregion")
        with self.system.transaction():
            self.system._damage(child)
            del self._subregions[
                bisect.bisect_left(self._subregions, render_key(child), key=render_key)
            ]
            if self._index is not None:
                self._index.remove(child)
            if self._live is not None and child._enabled:
                self._live.remove(child)
            child._parent = None
            self.system._structure_changed()
            if self._enabled and child._enabled:
                self.system._mark_pending()

    def set_address(self, addr: int) -> None:
        """Move inside the parent: a delete plus a re-add, so it becomes the newest sibling."""
        where = f"set_address({self.name!r}, {addr!r})"
        self._check_fits(addr, self._size, where)
        if addr == self._addr:
            return
        parent = self._parent
        if parent is None:
            self.system._damage(self)
            self._addr = addr
            self.system._damage(self)
            self.system._structure_changed()
            return
        self.system._check_mutable(where)
        with self.system.transaction():
            parent.del_subregion(self)
            self._addr = addr
            parent._insert_child(self)
            self.system._damage(self)
            if parent._enabled and self._enabled:
                self.system._mark_pending()

    # -- attribute mutations ---------------------------------------------------
    def _set_flag(self, attr: str, value: bool, what: str) -> None:
        value = bool(value)
        if getattr(self, attr) == value:
            return
        self.system._check_mutable(f"{what}({self.name!r})")
        with self.system.transaction():
            setattr(self, attr, value)
            self.system._damage(self)
            if self._enabled:
                self.system._mark_pending()

    def set_enabled(self, enabled: bool) -> None:
        enabled = bool(enabled)
        if enabled == self._enabled:
            return
        self.system._check_mutable(f"set_enabled({self.name!r})")
        with self.system.transaction():
            live = self._parent._live if self._parent is not None else None
            if live is not None:
                if enabled:
                    live.add(self)
                else:
                    live.remove(self)
            self._enabled = enabled
            self.system._damage(self)
            self.system._mark_pending()

    def set_readonly(self, readonly: bool) -> None:
        self._set_flag("_readonly", readonly, "set_readonly")

    def set_nonvolatile(self, nonvolatile: bool) -> None:
        self._set_flag("_nonvolatile", nonvolatile, "set_nonvolatile")

    def set_unmergeable(self, unmergeable: bool) -> None:
        self._set_flag("_unmergeable", unmergeable, "set_unmergeable")

    def set_romd(self, romd: bool) -> None:
        if self.kind is not RegionKind.ROM_DEVICE:
            raise RegionError(f"set_romd({self.name!r}): only a rom_device has a romd mode")
        self._set_flag("_romd_mode", romd, "set_romd")

    def set_size(self, size: int) -> None:
        """Change the size.  RAM-backed regions need a resizable block (size page-aligned up,
        host address kept); an alias must stay inside its target."""
        where = f"set_size({self.name!r}, {size!r})"
        check_size(self.name, size)
        if self.has_ram_block:
            assert self.ram_block is not None
            if not self.ram_block.resizable:
                raise RegionError(f"{where}: ram block {self.ram_block.name!r} is not resizable")
            size = page_align_up(size)
            if size > self.ram_block.max_length:
                raise RegionError(
                    f"{where}: exceeds the block's max length {self.ram_block.max_length:#x}"
                )
        if self.kind is RegionKind.ALIAS:
            self._check_alias_window(self._alias_offset, size)
        for alias in self._aliases:
            if alias._alias_offset + alias._size > size:
                raise RegionError(
                    f"{where}: alias {alias.name!r} shows [{alias._alias_offset:#x}, "
                    f"{alias._alias_offset + alias._size:#x}) of it (shrink or move it first)"
                )
        if self._parent is not None:
            self._check_fits(self._addr, size, where)
        if size == self._size:
            return
        self.system._check_mutable(where)
        if self.ram_block is not None:
            try:
                self.ram_block.resize(size)
            except HostMemoryError as e:
                raise RegionError(f"{where}: {e}") from e
        with self.system.transaction():
            self.system._damage(self)
            self._size = size
            parent = self._parent
            if parent is not None:
                for index in (parent._index, parent._live):
                    if index is not None:
                        index.grew(size)
            self.system._damage(self)
            self.system._structure_changed()
            self.system._mark_pending()

    def set_alias_offset(self, offset: int) -> None:
        where = f"set_alias_offset({self.name!r}, {offset!r})"
        if self.kind is not RegionKind.ALIAS:
            raise RegionError(f"{where}: not an alias")
        self._check_alias_window(offset, self._size)
        if offset == self._alias_offset:
            return
        self.system._check_mutable(where)
        with self.system.transaction():
            self._alias_offset = offset
            self.system._damage(self)
            self.system._structure_changed()
            if self._enabled:
                self.system._mark_pending()

    def log_start(self, client: DirtyLogClient | str) -> None:
        """Start dirty logging for ``client`` (refcounted; the mask changes on 0 -> 1)."""
        self._log_update(client, +1)

    def log_stop(self, client: DirtyLogClient | str) -> None:
        self._log_update(client, -1)

    def _log_update(self, client: DirtyLogClient | str, delta: int) -> None:
        c = DirtyLogClient.parse(client)
        what = "log_start" if delta > 0 else "log_stop"
        where = f"{what}({self.name!r}, {c.name.lower() if c.name else c})"
        if not self.has_ram_block:
            raise RegionError(f"{where}: only RAM-backed regions can log dirty pages")
        count = self._log_counts.get(c, 0)
        if count + delta < 0:
            raise RegionError(f"{where}: logging was not started")
        self.system._check_mutable(where)
        self._log_counts[c] = count + delta
        if (count > 0) == (count + delta > 0):
            return
        with self.system.transaction():
            self._log_mask = (self._log_mask & ~c) | (c if delta > 0 else 0)
            self.system._damage(self)
            if self._enabled:
                self.system._mark_pending()

    # -- dirty memory (QEMU's memory_region_get_dirty and friends) -------------------
    def _dirty_window(self, offset: int, size: int, what: str) -> None:
        if not self.has_ram_block:
            raise RegionError(f"{what}({self.name!r}): only RAM-backed regions have dirty memory")
        if not (isinstance(offset, int) and isinstance(size, int)) or (
            offset < 0 or size < 0 or offset + size > self._size
        ):
            raise RegionError(
                f"{what}({self.name!r}): [{offset!r}, +{size!r}) is outside the region "
                f"(size {self._size:#x})"
            )

    def get_dirty(self, offset: int, size: int, client: DirtyLogClient | str) -> bool:
        """Is any page of ``[offset, offset + size)`` dirty for ``client``?"""
        self._dirty_window(offset, size, "get_dirty")
        assert self.ram_block is not None
        return self.ram_block.dirty.get(offset, size, DirtyLogClient.parse(client))

    def snapshot_and_clear_dirty(
        self, offset: int, size: int, client: DirtyLogClient | str
    ) -> DirtySnapshot:
        """Take and clear ``client``'s dirty pages of ``[offset, offset + size)``; the
        snapshot answers ``get_dirty(offset, size)`` for sub-ranges."""
        self._dirty_window(offset, size, "snapshot_and_clear_dirty")
        assert self.ram_block is not None
        return self.ram_block.dirty.snapshot_and_clear(offset, size, DirtyLogClient.parse(client))

    def set_dirty(self, offset: int, size: int) -> None:
        """Mark ``[offset, offset + size)`` dirty for the clients logging this region
        (a device that wrote the block directly)."""
        self._dirty_window(offset, size, "set_dirty")
        assert self.ram_block is not None
        self.ram_block.dirty.mark(offset, size, self.dirty_log_mask())

    # -- lifetime ---------------------------------------------------------------
    def close(self) -> None:
        """Release the host memory of a RAM-backed region (detach it first)."""
        if self.ram_block is not None:
            self.ram_block.close()

    def __repr__(self) -> str:
        return f"<MemoryRegion {self.name!r} {self.kind.value} size={self._size:#x}>"
