"""From a FlatView to the memslots it asks for, and from a region tree to the
addresses where a future commit may cut them.  Pure functions, no I/O."""

from __future__ import annotations

import attrs

from flatview.flatrange import FlatView
from flatview.region import ADDR_SPACE_END, MemoryRegion, RegionKind
from kvm_backend.abi import KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY

PAGE = 4096


@attrs.frozen(slots=True)
class SlotMapping:
    """A guest-physical range backed linearly by host memory of one RAM block."""

    gpa: int
    size: int
    hva: int
    flags: int
    block: int = 0
    """Identity of the backing block (``id(RamBlock)``; any int in pure tests)."""
    block_offset: int = 0
    name: str = ""
    """The region it comes from (for display)."""

    @property
    def end(self) -> int:
        return self.gpa + self.size

    @property
    def delta(self) -> int:
        """hva - gpa: two mappings with the same block and delta map bytes identically."""
        return self.hva - self.gpa

    @property
    def readonly(self) -> bool:
        return bool(self.flags & KVM_MEM_READONLY)

    @property
    def logging(self) -> bool:
        return bool(self.flags & KVM_MEM_LOG_DIRTY_PAGES)

    def same_bytes(self, other: SlotMapping) -> bool:
        """Same block, same gpa->hva line and same READONLY: a guest cannot tell apart."""
        return (
            self.block == other.block
            and self.delta == other.delta
            and self.readonly == other.readonly
        )

    def piece(self, gpa: int, end: int) -> SlotMapping:
        """The sub-range ``[gpa, end)``."""
        shift = gpa - self.gpa
        return SlotMapping(
            gpa,
            end - gpa,
            self.hva + shift,
            self.flags,
            self.block,
            self.block_offset + shift,
            self.name,
        )


def desired_mappings(
    view: FlatView,
    *,
    readonly_mem: bool = True,
    qemu_compat: bool = False,
    page: int = PAGE,
) -> list[SlotMapping]:
    """The slot-worthy ranges of ``view``, trimmed to host pages, in gpa order.

    RAM, ROM and RAM devices get a slot; a ROM device only in romd mode (read-only);
    MMIO never.  READONLY comes from the range (so a read-only alias of RAM is a
    read-only slot), or, with ``qemu_compat``, from the region alone as QEMU does.
    Without KVM_CAP_READONLY_MEM, read-only RAM is mapped writable and ROM devices
    get no slot (QEMU's fallback).  Partial pages are left to MMIO exits.
    """
    out: list[SlotMapping] = []
    for fr in view:
        mr = fr.region
        if mr.kind is RegionKind.ROM_DEVICE:
            if not fr.romd_mode or not readonly_mem:
                continue
            readonly = True
        elif mr.is_ram:
            readonly = (mr.readonly if qemu_compat else fr.readonly) and readonly_mem
        else:
            continue
        block = mr.ram_block
        assert block is not None
        start = -(-fr.addr // page) * page
        end = fr.end // page * page
        if end <= start:
            continue
        offset = fr.offset_in_region + (start - fr.addr)
        if offset % page:
            continue  # the host address would be misaligned: KVM would refuse the slot
        flags = (KVM_MEM_READONLY if readonly else 0) | (
            KVM_MEM_LOG_DIRTY_PAGES if fr.dirty_log_mask else 0
        )
        out.append(
            SlotMapping(
                start, end - start, block.host_addr + offset, flags, id(block), offset, mr.name
            )
        )
    return out


def tree_boundaries(root: MemoryRegion | None, *, limit: int = 100_000) -> frozenset[int]:
    """Every guest-physical address where a region of the tree starts or ends,
    enabled or not, followed through aliases, plus the power-of-two offsets (from
    2 MiB) of resizable RAM: the places a future commit can cut a mapping.
    ``limit`` bounds the walk for pathological trees."""
    out: set[int] = set()
    if root is None:
        return frozenset()
    stack: list[tuple[MemoryRegion, int, int, int, int]] = [(root, 0, 0, ADDR_SPACE_END, 0)]
    visits = 0
    while stack and visits < limit:
        mr, base, clip_lo, clip_hi, depth = stack.pop()
        visits += 1
        start = base + mr.addr
        end = start + mr.size
        lo, hi = max(start, clip_lo), min(end, clip_hi)
        if lo >= hi:
            continue
        if clip_lo < start < clip_hi:
            out.add(start)
        if clip_lo < end < clip_hi:
            out.add(end)
        block = mr.ram_block
        if block is not None and block.resizable:
            # a resizable block may end anywhere later: cut at its power-of-two offsets
            # (from 2 MiB) so that growing then shrinking back deletes whole slots
            k = 1 << 21
            while k < block.max_length:
                if clip_lo < start + k < clip_hi:
                    out.add(start + k)
                k <<= 1
        if depth > 32:
            continue
        if mr.kind is RegionKind.ALIAS:
            target = mr.alias_target
            assert target is not None
            stack.append((target, start - target.addr - mr.alias_offset, lo, hi, depth + 1))
        else:
            for child in mr.subregions:
                stack.append((child, start, lo, hi, depth + 1))
    return frozenset(out)
