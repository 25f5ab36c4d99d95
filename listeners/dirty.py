"""Dirty pages carried per RAM block (like QEMU's ram_addr bitmap).

Bits harvested from a KVM slot are stored by *offset in the backing block*, so
re-slotting (delete, split, merge) never drops them.
"""

from __future__ import annotations

import threading

from flatview.hostmem import PAGE_SIZE as PAGE
from listeners.slot_layout import SlotMapping


class DirtyLog:
    def __init__(self) -> None:
        self._pages: dict[int, set[int]] = {}
        self._lock = threading.Lock()

    def merge_bitmap(self, mapping: SlotMapping, bitmap: bytes) -> int:
        """Add a slot's KVM bitmap (bit i = page i of the slot); returns pages set."""
        first = mapping.block_offset // PAGE
        npages = mapping.size // PAGE
        found = []
        for byte_index, byte in enumerate(bitmap):
            if not byte:
                continue
            for bit in range(8):
                if byte >> bit & 1:
                    page = byte_index * 8 + bit
                    if page < npages:
                        found.append(first + page)
        if found:
            with self._lock:
                self._pages.setdefault(mapping.block, set()).update(found)
        return len(found)

    def mark_all(self, mapping: SlotMapping) -> None:
        """Conservatively mark every page of ``mapping`` dirty (over-reporting)."""
        first = mapping.block_offset // PAGE
        with self._lock:
            self._pages.setdefault(mapping.block, set()).update(
                range(first, first + mapping.size // PAGE)
            )

    def pages(self, block: int, *, clear: bool = False) -> set[int]:
        """Dirty page indices (offset // PAGE) of ``block``; ``clear`` resets them."""
        with self._lock:
            got = self._pages.get(block, set())
            if clear:
                self._pages.pop(block, None)
                return got
            return set(got)
