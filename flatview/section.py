"""MemoryRegionSection: the frozen value a listener callback receives.

As in QEMU, a section points at what it describes rather than copying it: the
address space it belongs to and the :class:`FlatRange` of that space's view.
Its address, size and attributes are read through the range.
"""

from __future__ import annotations

from typing import Protocol

import attrs

from flatview.flatrange import FlatRange, FlatView
from flatview.region import MemoryRegion


class AddressSpaceRef(Protocol):
    """What a section tells about its address space (an :class:`AddressSpace`)."""

    @property
    def name(self) -> str: ...

    @property
    def flatview(self) -> FlatView: ...


@attrs.frozen(slots=True)
class MemoryRegionSection:
    """One flat range of one address space, as a listener sees it."""

    address_space: AddressSpaceRef = attrs.field(repr=lambda a: repr(a.name))
    range: FlatRange

    def __str__(self) -> str:
        """``AS "name": `` and the range as ``info mtree -f`` prints it."""
        return f'AS "{self.address_space.name}": {self.range}'

    @property
    def region(self) -> MemoryRegion:
        return self.range.region

    @property
    def offset_in_region(self) -> int:
        return self.range.offset_in_region

    @property
    def addr(self) -> int:
        return self.range.addr

    @property
    def size(self) -> int:
        return self.range.size

    @property
    def end(self) -> int:
        return self.range.addr + self.range.size

    @property
    def readonly(self) -> bool:
        return self.range.readonly

    @property
    def romd_mode(self) -> bool:
        return self.range.romd_mode

    @property
    def nonvolatile(self) -> bool:
        return self.range.nonvolatile

    @property
    def unmergeable(self) -> bool:
        return self.range.unmergeable

    @property
    def dirty_log_mask(self) -> int:
        return self.range.dirty_log_mask

    def describe(self) -> str:
        """``[start-end] name @offset flags`` for logs and the recording listener."""
        r = self.range
        flags = []
        if r.readonly:
            flags.append("ro")
        if r.romd_mode:
            flags.append("romd")
        if r.nonvolatile:
            flags.append("nv")
        if r.unmergeable:
            flags.append("unmergeable")
        if r.dirty_log_mask:
            flags.append(f"log={r.dirty_log_mask:#x}")
        tail = (" " + ",".join(flags)) if flags else ""
        return f"{r.addr:#018x}-{r.end - 1:#018x} {r.region.name} @{r.offset_in_region:#x}{tail}"
