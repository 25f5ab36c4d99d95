"""Memslot values: one slot as the kernel holds it, and the kernel's slot numbering."""

from __future__ import annotations

import attrs

from kvm_backend.abi import KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY

KVM_MEM_MAX_NR_PAGES = (1 << 31) - 1
"""The most pages one slot may hold (the kernel refuses bigger slots with EINVAL)."""


def slot_number(as_id: int, slot_id: int) -> int:
    """The kernel's encoding of a slot: ``(as_id << 16) | id``."""
    return (as_id << 16) | slot_id


@attrs.frozen(slots=True)
class Memslot:
    """One KVM memory slot as the kernel holds it (``slot`` is the encoded number)."""

    slot: int
    flags: int = attrs.field(repr=hex)
    gpa: int = attrs.field(repr=hex)
    size: int = attrs.field(repr=hex)
    hva: int = attrs.field(repr=hex)

    @property
    def as_id(self) -> int:
        return self.slot >> 16

    @property
    def slot_id(self) -> int:
        return self.slot & 0xFFFF

    @property
    def end(self) -> int:
        return self.gpa + self.size

    @property
    def readonly(self) -> bool:
        return bool(self.flags & KVM_MEM_READONLY)

    @property
    def dirty_logging(self) -> bool:
        return bool(self.flags & KVM_MEM_LOG_DIRTY_PAGES)

    def hva_of(self, gpa: int) -> int:
        return self.hva + (gpa - self.gpa)
