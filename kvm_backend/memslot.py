"""Memslot values and the slot-table interface shared by the real and simulated VM."""

from __future__ import annotations

from typing import Protocol

import attrs

from kvm_backend.abi import KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY


def slot_number(as_id: int, slot_id: int) -> int:
    """The kernel's encoding of a slot: ``(as_id << 16) | id``."""
    return (as_id << 16) | slot_id


@attrs.frozen(slots=True)
class Memslot:
    """One KVM memory slot as the kernel holds it (``slot`` is the encoded number)."""

    slot: int
    flags: int
    gpa: int
    size: int
    hva: int

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


class MemslotBackend(Protocol):
    """What the KVM listener needs from a VM: a real :class:`~kvm_backend.kvm.Vm` or a
    :class:`~kvm_backend.sim.SimVm`.  Failures raise :class:`MemslotError`."""

    @property
    def nr_memslots(self) -> int: ...

    @property
    def nr_address_spaces(self) -> int: ...

    @property
    def readonly_mem(self) -> bool: ...

    def slots(self) -> dict[int, Memslot]:
        """The slot table after the last successful ioctl, keyed by encoded slot."""
        ...

    def set_user_memory_region(self, slot: int, flags: int, gpa: int, size: int, hva: int) -> None:
        """KVM_SET_USER_MEMORY_REGION(2); ``size == 0`` deletes."""
        ...

    def get_dirty_log(self, slot: int) -> bytes:
        """The slot's dirty bitmap (one bit per page, rounded up to 64 bits)."""
        ...
