"""Dirty memory, owned by each host memory block, one bitmap per client.

QEMU keeps a dirty bitmap per client (VGA, CODE, MIGRATION) over all of guest
RAM; here each :class:`~flatview.hostmem.RamBlock` owns its :class:`DirtyBitmaps`,
indexed by page offset in the block, so re-slotting, aliasing or moving a region
never loses a bit.  Every path that writes guest memory feeds them: the KVM
listener's harvests of the kernel's dirty log, writes through
``AddressSpace.write``, and writes completed by optimistic fault repair.  A VMM
reads them through the region, as in QEMU (``MemoryRegion.get_dirty`` and
``MemoryRegion.snapshot_and_clear_dirty``).  Thread-safe: harvests run on the
committing thread, a migration thread, or a vCPU thread.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable

import attrs

from flatview.errors import RegionError


class DirtyLogClient(enum.IntFlag):
    """Dirty-log clients, as QEMU's DIRTY_MEMORY_* bits."""

    VGA = 1
    CODE = 2
    MIGRATION = 4

    @classmethod
    def parse(cls, client: object) -> DirtyLogClient:
        """One client, by name (``"vga"``) or value (``DirtyLogClient.VGA``, 1)."""
        if isinstance(client, str):
            found = cls.__members__.get(client.upper())
        elif isinstance(client, int) and not isinstance(client, bool):
            found = next((c for c in cls if c.value == client), None)
        else:
            found = None
        if found is None:
            raise RegionError(
                f"unknown dirty-log client {client!r} (expected vga, code or migration)"
            )
        return found


ALL_CLIENTS = DirtyLogClient.VGA | DirtyLogClient.CODE | DirtyLogClient.MIGRATION
"""What a harvest of the kernel's log marks: the kernel does not say which client
a dirty page is for, so every client sees it (over-reporting, never losing)."""


def _page_range(offset: int, size: int, page: int) -> range:
    return range(offset // page, (offset + size + page - 1) // page)


@attrs.frozen
class DirtySnapshot:
    """The dirty pages of ``[offset, offset + size)`` of a block at one instant."""

    offset: int
    size: int
    pages: frozenset[int]
    """Page indices (offset in the block // page size)."""
    page_size: int

    def get_dirty(self, offset: int, size: int) -> bool:
        """Was any page of ``[offset, offset + size)`` dirty (inside the snapshot)?"""
        if offset < self.offset or offset + size > self.offset + self.size:
            raise RegionError(
                f"snapshot covers [{self.offset:#x}, {self.offset + self.size:#x}), "
                f"not [{offset:#x}, {offset + size:#x})"
            )
        return any(p in self.pages for p in _page_range(offset, size, self.page_size))


class DirtyBitmaps:
    """One set of dirty page indices per client, for one block."""

    def __init__(self, page_size: int) -> None:
        self.page_size = page_size
        self._pages: dict[DirtyLogClient, set[int]] = {c: set() for c in DirtyLogClient}
        self._lock = threading.Lock()

    def mark(self, offset: int, size: int, clients: int) -> None:
        """Mark the pages of ``[offset, offset + size)`` dirty for ``clients``."""
        if clients and size > 0:
            self.mark_pages(_page_range(offset, size, self.page_size), clients)

    def mark_pages(self, pages: Iterable[int], clients: int) -> None:
        pages = list(pages)
        with self._lock:
            for c in DirtyLogClient:
                if clients & c:
                    self._pages[c].update(pages)

    def get(self, offset: int, size: int, client: DirtyLogClient) -> bool:
        with self._lock:
            got = self._pages[client]
            return any(p in got for p in _page_range(offset, size, self.page_size))

    def snapshot_and_clear(self, offset: int, size: int, client: DirtyLogClient) -> DirtySnapshot:
        window = _page_range(offset, size, self.page_size)
        with self._lock:
            got = self._pages[client]
            taken = (
                frozenset(p for p in window if p in got)
                if len(window) < len(got)
                else (frozenset(p for p in got if p in window))
            )
            got.difference_update(taken)
        return DirtySnapshot(offset, size, taken, self.page_size)
