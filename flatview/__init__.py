"""flatview: QEMU's memory model for Python VMMs.

Build a tree of :class:`MemoryRegion` through a :class:`MemorySystem`, render it
per :class:`AddressSpace` into an immutable :class:`FlatView`, and let listeners
(the KVM listener among them) follow every committed change.
"""

import logging

from flatview.address_space import AddressSpace
from flatview.diff import RangeUpdate, ViewDiff, diff_ranges, diff_views
from flatview.dirty import DirtyLogClient, DirtySnapshot
from flatview.errors import (
    AccessError,
    ConfigError,
    FlatviewError,
    RegionError,
    TransactionError,
)
from flatview.flatrange import FlatRange, FlatView
from flatview.hostmem import PAGE_SIZE, HostMemoryError, RamBlock
from flatview.listener import ListenerBase, MemoryListener, supports_resize
from flatview.pc import PcBoard
from flatview.placement import Placement
from flatview.region import ADDR_SPACE_END, MemoryRegion, MmioOps, RegionKind
from flatview.render import render, resolve_root
from flatview.section import MemoryRegionSection
from flatview.system import MemorySystem

# a library stays silent until the application configures logging
logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.2.0"

__all__ = [
    "ADDR_SPACE_END",
    "PAGE_SIZE",
    "AccessError",
    "AddressSpace",
    "ConfigError",
    "DirtyLogClient",
    "DirtySnapshot",
    "FlatRange",
    "FlatView",
    "FlatviewError",
    "HostMemoryError",
    "ListenerBase",
    "MemoryListener",
    "MemoryRegion",
    "MemoryRegionSection",
    "MemorySystem",
    "MmioOps",
    "PcBoard",
    "Placement",
    "RamBlock",
    "RangeUpdate",
    "RegionError",
    "RegionKind",
    "TransactionError",
    "ViewDiff",
    "diff_ranges",
    "diff_views",
    "render",
    "resolve_root",
    "supports_resize",
]
