"""MemoryRegionSection: the frozen value a listener callback receives."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from flatview.flatrange import FlatRange
from flatview.region import MemoryRegion

if TYPE_CHECKING:
    from flatview.address_space import AddressSpace


@attrs.frozen(slots=True)
class MemoryRegionSection:
    """One flat range of one address space, as a listener sees it."""

    address_space: AddressSpace
    region: MemoryRegion
    offset_in_region: int
    addr: int
    size: int
    readonly: bool = False
    romd_mode: bool = False
    nonvolatile: bool = False
    unmergeable: bool = False
    dirty_log_mask: int = 0

    @property
    def end(self) -> int:
        return self.addr + self.size

    @classmethod
    def from_range(cls, address_space: AddressSpace, fr: FlatRange) -> MemoryRegionSection:
        return cls(
            address_space,
            fr.region,
            fr.offset_in_region,
            fr.addr,
            fr.size,
            fr.readonly,
            fr.romd_mode,
            fr.nonvolatile,
            fr.unmergeable,
            fr.dirty_log_mask,
        )

    def describe(self) -> str:
        """``[start-end] name @offset flags`` for logs and the recording listener."""
        flags = []
        if self.readonly:
            flags.append("ro")
        if self.romd_mode:
            flags.append("romd")
        if self.nonvolatile:
            flags.append("nv")
        if self.unmergeable:
            flags.append("unmergeable")
        if self.dirty_log_mask:
            flags.append(f"log={self.dirty_log_mask:#x}")
        tail = (" " + ",".join(flags)) if flags else ""
        return (
            f"{self.addr:#018x}-{self.end - 1:#018x} {self.region.name} "
            f"@{self.offset_in_region:#x}{tail}"
        )
