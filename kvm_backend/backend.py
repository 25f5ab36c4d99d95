"""The memslot backend protocol: what a memory listener needs from a VM.

A real :class:`~kvm_backend.kvm.Vm` and the simulated
:class:`~kvm_backend.sim.SimVm` implement it, and so does any wrapper of either
(fault injection, tracing).  Optional capabilities are properties that may be
None, never ``isinstance`` tests on the concrete class.
"""

from __future__ import annotations

from typing import Protocol

from kvm_backend.memslot import Memslot
from kvm_backend.timeline import Timeline


class MemslotBackend(Protocol):
    """Failures raise :class:`~kvm_backend.errors.MemslotError`."""

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

    @property
    def timeline(self) -> Timeline | None:
        """The history of the slot table, where the backend keeps one (an optional
        capability: None on real KVM)."""
        ...
