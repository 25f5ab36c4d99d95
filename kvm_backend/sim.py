"""A simulated KVM: the kernel's memslot rules and errnos, plus a timeline.

``SimVm`` answers ``set_user_memory_region`` exactly as the kernel validates it
(order of checks and errnos from the KVM API; see docs/kvm-backend.md) and keeps a
:class:`~kvm_backend.timeline.Timeline` of every change, which can say which guest
bytes were unmapped between two instants and for how many ioctl steps.  Failures
are injected by wrapping it (``kvm_backend.testing.fault_injection``), as any
backend.  It is what the CLI uses without /dev/kvm and what fast unit tests use;
``tests/test_sim_fidelity.py`` checks it against real KVM.
"""

from __future__ import annotations

import bisect
import errno as _errno

from flatview.hostmem import PAGE_SIZE as PAGE
from kvm_backend.abi import (
    KVM_MEM_GUEST_MEMFD,
    KVM_MEM_LOG_DIRTY_PAGES,
    KVM_MEM_READONLY,
)
from kvm_backend.errors import KvmError, MemslotError
from kvm_backend.memslot import KVM_MEM_MAX_NR_PAGES, Memslot
from kvm_backend.timeline import Timeline

USER_END = (1 << 47) - PAGE
"""``hva + size`` may not exceed this (x86-64, 4-level paging: TASK_SIZE_MAX; measured)."""


class _SlotIndex:
    """One address space's slots by gpa: a sorted array (slots never overlap, so an
    overlap query is a bisect and a short walk; measured faster than an interval
    tree here by ~10x for create/delete)."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._items: list[tuple[int, int, int]] = []  # (gpa, end, slot)

    def add(self, gpa: int, end: int, slot: int) -> None:
        i = bisect.bisect_left(self._starts, gpa)
        self._starts.insert(i, gpa)
        self._items.insert(i, (gpa, end, slot))

    def remove(self, gpa: int, slot: int) -> None:
        i = bisect.bisect_left(self._starts, gpa)
        while self._items[i][2] != slot:
            i += 1
        del self._starts[i]
        del self._items[i]

    def overlapping(self, lo: int, hi: int) -> list[int]:
        """Slots intersecting ``[lo, hi)``."""
        i = max(bisect.bisect_right(self._starts, lo) - 1, 0)
        out = []
        while i < len(self._items) and self._items[i][0] < hi:
            if self._items[i][1] > lo:
                out.append(self._items[i][2])
            i += 1
        return out


class SimKvm:
    """Stands in for :class:`~kvm_backend.kvm.Kvm` where only memslots matter."""

    def __init__(
        self,
        *,
        nr_memslots: int = 32764,
        nr_address_spaces: int = 1,
        readonly_mem: bool = True,
        max_gpa_bits: int = 52,
        guest_memfd: bool = True,
    ) -> None:
        self.nr_memslots = nr_memslots
        self.nr_address_spaces = nr_address_spaces
        self.readonly_mem = readonly_mem
        self.max_gpa_bits = max_gpa_bits
        self.guest_memfd = guest_memfd
        """KVM_CAP_GUEST_MEMFD: the flag is valid in v2 (a bind to a real guest_memfd
        is never simulated, so a create with it fails EINVAL after the overlap check)."""

    def create_vm(self) -> SimVm:
        return SimVm(self)

    def __enter__(self) -> SimKvm:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class SimVm:
    """The memslot table of one VM, validated as the kernel does."""

    def __init__(self, kvm: SimKvm | None = None, *, use_region2: bool = True) -> None:
        self.kvm = kvm or SimKvm()
        self.use_region2 = use_region2
        self._slots: dict[int, Memslot] = {}
        self._index: dict[int, _SlotIndex] = {}
        """Per address space: the slots' gpa ranges (overlap and lookup in O(log n))."""
        self._dirty: dict[int, set[int]] = {}
        self._timeline = Timeline()
        self.ioctl_count = 0
        self.closed = False

    # -- capabilities ------------------------------------------------------------
    @property
    def nr_memslots(self) -> int:
        return self.kvm.nr_memslots

    @property
    def nr_address_spaces(self) -> int:
        return self.kvm.nr_address_spaces

    @property
    def readonly_mem(self) -> bool:
        return self.kvm.readonly_mem

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> SimVm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- memslots ------------------------------------------------------------------
    def slots(self) -> dict[int, Memslot]:
        return dict(self._slots)

    @property
    def timeline(self) -> Timeline:
        """Every change of the slot table (see :class:`Timeline`)."""
        return self._timeline

    def set_user_memory_region(self, slot: int, flags: int, gpa: int, size: int, hva: int) -> None:
        name = "KVM_SET_USER_MEMORY_REGION2" if self.use_region2 else "KVM_SET_USER_MEMORY_REGION"
        self.ioctl_count += 1
        err = self._validate(slot, flags, gpa, size, hva)
        if err:
            raise MemslotError(name, err, slot=slot, gpa=gpa, size=size, flags=flags, hva=hva)
        index = self._index.get(slot >> 16)
        if index is None:
            index = self._index[slot >> 16] = _SlotIndex()
        old = self._slots.get(slot)
        if old is not None:
            index.remove(old.gpa, slot)
        if size == 0:
            self._slots.pop(slot, None)
            self._dirty.pop(slot, None)
        else:
            self._slots[slot] = Memslot(slot, flags, gpa, size, hva)
            index.add(gpa, gpa + size, slot)
            if not flags & KVM_MEM_LOG_DIRTY_PAGES:
                self._dirty.pop(slot, None)
            elif old is None or not old.flags & KVM_MEM_LOG_DIRTY_PAGES:
                self._dirty[slot] = set()
        self._timeline.record(slot, old, self._slots.get(slot))

    def _validate(self, slot: int, flags: int, gpa: int, size: int, hva: int) -> int:
        """0 if the kernel would accept the call, else its errno (checks in kernel order)."""
        u64 = 2**64
        if not (0 <= slot < 2**32 and 0 <= flags < 2**32):
            return _errno.EINVAL
        if not (0 <= gpa < u64 and 0 <= size < u64 and 0 <= hva < u64):
            return _errno.EINVAL
        if slot & 0xFFFF >= self.nr_memslots:
            return _errno.EINVAL
        valid = KVM_MEM_LOG_DIRTY_PAGES | (KVM_MEM_READONLY if self.readonly_mem else 0)
        gmem = bool(flags & KVM_MEM_GUEST_MEMFD)
        if self.use_region2 and self.kvm.guest_memfd:
            valid |= KVM_MEM_GUEST_MEMFD
            if gmem:
                valid &= ~(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY)
        if flags & ~valid:
            return _errno.EINVAL
        if size % PAGE or gpa % PAGE or hva % PAGE:
            return _errno.EINVAL
        if hva + size > USER_END:
            return _errno.EINVAL
        as_id, _sid = slot >> 16, slot & 0xFFFF
        if as_id >= self.nr_address_spaces:
            return _errno.EINVAL
        if gpa + size >= u64 and size:
            return _errno.EINVAL
        if size // PAGE > KVM_MEM_MAX_NR_PAGES:
            return _errno.EINVAL
        old = self._slots.get(slot)
        if size == 0:
            return 0 if old is not None else _errno.EINVAL
        if old is not None:
            if hva != old.hva or size != old.size:
                return _errno.EINVAL
            if (flags ^ old.flags) & (KVM_MEM_READONLY | KVM_MEM_GUEST_MEMFD):
                return _errno.EINVAL
            if gpa == old.gpa:
                return 0  # flags-only, or nothing to change
        index = self._index.get(as_id)  # CREATE or MOVE: no overlap with another slot
        if index is not None and any(s != slot for s in index.overlapping(gpa, gpa + size)):
            return _errno.EEXIST
        if gmem:
            return _errno.EINVAL  # guest_memfd bind: the simulator has no guest_memfd
        if (gpa + size) // PAGE - 1 > (1 << (self.kvm.max_gpa_bits - 12)) - 1:
            return _errno.EINVAL
        return 0

    # -- dirty logging ---------------------------------------------------------------
    def touch(self, gpa: int, size: int = 1, as_id: int = 0) -> bool:
        """A simulated guest write: marks pages dirty in logging slots.  False if the
        bytes are not all backed by a writable slot (the write would be an MMIO exit)."""
        ok = True
        for page in range(gpa // PAGE, (gpa + size - 1) // PAGE + 1):
            addr = page * PAGE
            ms = self._lookup(addr, as_id)
            if ms is None or ms.readonly:
                ok = False
                continue
            if ms.slot in self._dirty:
                self._dirty[ms.slot].add((addr - ms.gpa) // PAGE)
        return ok

    def _lookup(self, gpa: int, as_id: int = 0) -> Memslot | None:
        index = self._index.get(as_id)
        for slot in index.overlapping(gpa, gpa + 1) if index is not None else ():
            return self._slots[slot]
        return None

    def get_dirty_log(self, slot: int) -> bytes:
        """Return and clear the slot's dirty bitmap (no manual protect)."""
        ms = self._slots.get(slot)
        if slot & 0xFFFF >= self.nr_memslots or slot >> 16 >= self.nr_address_spaces:
            raise KvmError("KVM_GET_DIRTY_LOG", _errno.EINVAL, slot=slot)
        if ms is None or slot not in self._dirty:
            raise KvmError("KVM_GET_DIRTY_LOG", _errno.ENOENT, slot=slot)
        pages = ms.size // PAGE
        bitmap = bytearray(max(8, (pages + 63) // 64 * 8))
        for p in self._dirty[slot]:
            bitmap[p // 8] |= 1 << (p % 8)
        self._dirty[slot] = set()
        return bytes(bitmap)
