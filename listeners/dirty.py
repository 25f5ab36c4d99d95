"""From a KVM dirty bitmap to the dirty pages of the block behind the slot.

Bit i of a slot's bitmap is page i of the slot; the pages are returned as page
offsets in the slot's backing block, which owns the dirty bitmaps
(:mod:`flatview.dirty`), so re-slotting (delete, split, merge) never drops them.
"""

from __future__ import annotations

from flatview.hostmem import PAGE_SIZE as PAGE
from listeners.slot_layout import SlotMapping


def bitmap_pages(mapping: SlotMapping, bitmap: bytes) -> list[int]:
    """Page indices in the block (block offset // page) of the bits set in ``bitmap``."""
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
    return found


def slot_pages(mapping: SlotMapping) -> range:
    """Every page of the slot, as page indices in its block."""
    first = mapping.block_offset // PAGE
    return range(first, first + mapping.size // PAGE)
