"""flatview: QEMU's memory model for Python VMMs.

Build a tree of :class:`MemoryRegion` through a :class:`MemorySystem`, render it
per :class:`AddressSpace` into an immutable :class:`FlatView`, and let listeners
(the KVM listener among them) follow every committed change.
"""

from flatview.address_space import AddressSpace
from flatview.diff import RangeUpdate, ViewDiff, diff_views
from flatview.errors import AccessError, FlatviewError, RegionError, TransactionError
from flatview.flatrange import FlatRange, FlatView
from flatview.hostmem import PAGE_SIZE, RamBlock
from flatview.region import ADDR_SPACE_END, DirtyLogClient, MemoryRegion, MmioOps, RegionKind
from flatview.render import render, resolve_root
from flatview.section import MemoryRegionSection
from flatview.system import MemorySystem

__all__ = [
    "ADDR_SPACE_END",
    "PAGE_SIZE",
    "AccessError",
    "AddressSpace",
    "DirtyLogClient",
    "FlatRange",
    "FlatView",
    "FlatviewError",
    "MemoryRegion",
    "MemoryRegionSection",
    "MemorySystem",
    "MmioOps",
    "RamBlock",
    "RangeUpdate",
    "RegionError",
    "RegionKind",
    "TransactionError",
    "ViewDiff",
    "diff_views",
    "render",
    "resolve_root",
]
