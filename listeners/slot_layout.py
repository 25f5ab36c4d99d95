"""From flat ranges to the memslots they ask for, and from the tree's placements
to the addresses where a future commit may cut them.  Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from flatview.flatrange import FlatRange
from flatview.hostmem import PAGE_SIZE as PAGE
from flatview.placement import Placement
from flatview.region import RegionKind
from kvm_backend.abi import KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY


@attrs.frozen(slots=True)
class SlotMapping:
    """A guest-physical range backed linearly by host memory of one RAM block."""

    gpa: int = attrs.field(repr=hex)
    size: int = attrs.field(repr=hex)
    hva: int = attrs.field(repr=hex)
    flags: int = attrs.field(repr=hex)
    block: int = 0
    """Identity of the backing block (``RamBlock.id``; any int in pure tests)."""
    block_offset: int = attrs.field(default=0, repr=hex)
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


def slot_mapping(
    fr: FlatRange, *, readonly_mem: bool = True, qemu_compat: bool = False, page: int = PAGE
) -> SlotMapping | None:
    """The slot one flat range asks for, trimmed to host pages, or None.

    RAM, ROM and RAM devices get a slot; a ROM device only in romd mode (read-only);
    MMIO never.  READONLY comes from the range (so a read-only alias of RAM is a
    read-only slot), or, with ``qemu_compat``, from the region alone as QEMU does.
    Without KVM_CAP_READONLY_MEM, read-only RAM is mapped writable and ROM devices
    get no slot (QEMU's fallback).  Partial pages are left to MMIO exits.
    """
    mr = fr.region
    if not fr.ram_readable:
        return None
    if mr.kind is RegionKind.ROM_DEVICE:
        if not readonly_mem:
            return None
        readonly = True
    else:
        readonly = (mr.readonly if qemu_compat else fr.readonly) and readonly_mem
    block = mr.ram_block
    assert block is not None
    start = -(-fr.addr // page) * page
    end = fr.end // page * page
    if end <= start:
        return None
    offset = fr.offset_in_region + (start - fr.addr)
    if offset % page:
        return None  # the host address would be misaligned: KVM would refuse the slot
    flags = (KVM_MEM_READONLY if readonly else 0) | (
        KVM_MEM_LOG_DIRTY_PAGES if fr.dirty_log_mask else 0
    )
    return SlotMapping(
        start, end - start, block.host_addr + offset, flags, block.id, offset, mr.name
    )


def desired_mappings(
    view: Iterable[FlatRange], *, readonly_mem: bool = True, qemu_compat: bool = False
) -> list[SlotMapping]:
    """The slots of every range of ``view``, in its (gpa) order."""
    out = []
    for fr in view:
        m = slot_mapping(fr, readonly_mem=readonly_mem, qemu_compat=qemu_compat)
        if m is not None:
            out.append(m)
    return out


def cut_points(placements: Iterable[Placement], *, first_cut: int = 1 << 21) -> frozenset[int]:
    """Every guest-physical address where a region starts or ends (inside the window
    its ancestors leave it), plus the power-of-two offsets (from 2 MiB) of resizable
    RAM, whose end may move anywhere later: cutting there means that growing and
    then shrinking back deletes whole slots and never unmaps unchanged bytes."""
    out: set[int] = set()
    for p in placements:
        if p.lo < p.start < p.hi:
            out.add(p.start)
        if p.lo < p.end < p.hi:
            out.add(p.end)
        block = p.region.ram_block
        if block is not None and block.resizable:
            k = first_cut
            while k < block.max_length:
                if p.lo < p.start + k < p.hi:
                    out.add(p.start + k)
                k <<= 1
    return frozenset(out)
