"""Fault injection: a wrapper around any memslot backend that fails chosen calls.

The failing call is not issued: the kernel's table stays as it was, exactly as
after a refused ioctl.  Calls are counted across ``set_user_memory_region`` and,
if asked, ``get_dirty_log``.
"""

from __future__ import annotations

import errno as _errno

from kvm_backend.backend import MemslotBackend
from kvm_backend.errors import MemslotError
from kvm_backend.memslot import Memslot
from kvm_backend.timeline import Timeline


class FaultInjector:
    def __init__(self, backend: MemslotBackend) -> None:
        self.backend = backend
        self.calls = 0
        self._fail: dict[int, int] = {}

    def inject_failure(self, after: int, err: int = _errno.ENOMEM) -> None:
        """Fail the memslot call ``after`` calls from now (0 = the next one)."""
        self._fail[self.calls + after] = err

    def clear(self) -> None:
        """Forget the failures still to come."""
        self._fail.clear()

    @property
    def nr_memslots(self) -> int:
        return self.backend.nr_memslots

    @property
    def nr_address_spaces(self) -> int:
        return self.backend.nr_address_spaces

    @property
    def readonly_mem(self) -> bool:
        return self.backend.readonly_mem

    @property
    def timeline(self) -> Timeline | None:
        return self.backend.timeline

    def slots(self) -> dict[int, Memslot]:
        return self.backend.slots()

    def set_user_memory_region(self, slot: int, flags: int, gpa: int, size: int, hva: int) -> None:
        n = self.calls
        self.calls += 1
        err = self._fail.pop(n, None)
        if err is not None:
            raise MemslotError(
                "KVM_SET_USER_MEMORY_REGION (injected)",
                err,
                slot=slot,
                gpa=gpa,
                size=size,
                flags=flags,
                hva=hva,
            )
        self.backend.set_user_memory_region(slot, flags, gpa, size, hva)

    def get_dirty_log(self, slot: int) -> bytes:
        return self.backend.get_dirty_log(slot)
