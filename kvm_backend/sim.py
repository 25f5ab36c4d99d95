"""A simulated KVM: the kernel's memslot rules and errnos, plus a timeline.

``SimVm`` answers ``set_user_memory_region`` exactly as the kernel validates it
(order of checks and errnos from the KVM API; see docs/kvm-notes.md), keeps every
slot-table state it passes through, and can say which guest bytes were unmapped
between two instants and for how many ioctl steps.  A failure of any errno can be
injected at the k-th ioctl.  It is what the CLI uses without /dev/kvm and what fast
unit tests use; ``tests/test_sim_fidelity.py`` checks it against real KVM.
"""

from __future__ import annotations

import errno as _errno
import itertools

import attrs
from intervaltree import IntervalTree

from kvm_backend.abi import (
    KVM_MEM_GUEST_MEMFD,
    KVM_MEM_LOG_DIRTY_PAGES,
    KVM_MEM_READONLY,
)
from kvm_backend.errors import KvmError, MemslotError
from kvm_backend.memslot import Memslot

PAGE = 4096
KVM_MEM_MAX_NR_PAGES = (1 << 31) - 1
USER_END = (1 << 47) - PAGE
"""``hva + size`` may not exceed this (x86-64, 4-level paging: TASK_SIZE_MAX; measured)."""


@attrs.frozen
class Hole:
    """Guest bytes ``[gpa, gpa + size)`` unmapped during ``steps`` intermediate states.

    ``same_mapping``: mapped identically (host address, READONLY) at both ends, so the
    hole was avoidable; otherwise the bytes were remapped (or only mapped at one end).
    """

    gpa: int
    size: int
    steps: int
    same_mapping: bool


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
        self._trees: dict[int, IntervalTree] = {}
        """Per address space: the slots' gpa ranges (overlap and lookup in O(log n))."""
        self._dirty: dict[int, set[int]] = {}
        self.timeline: list[tuple[Memslot, ...]] = [()]
        """Slot table after each successful ioctl; index = instant."""
        self.ioctl_count = 0
        self._fail_at: dict[int, int] = {}
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

    # -- fault injection -----------------------------------------------------------
    def inject_failure(self, after: int, err: int = _errno.ENOMEM) -> None:
        """Make the memslot ioctl ``after`` calls from now fail with ``err`` (0 = next)."""
        self._fail_at[self.ioctl_count + after] = err

    # -- memslots ------------------------------------------------------------------
    def slots(self) -> dict[int, Memslot]:
        return dict(self._slots)

    @property
    def now(self) -> int:
        """The current instant (index into ``timeline``)."""
        return len(self.timeline) - 1

    def set_user_memory_region(self, slot: int, flags: int, gpa: int, size: int, hva: int) -> None:
        name = "KVM_SET_USER_MEMORY_REGION2" if self.use_region2 else "KVM_SET_USER_MEMORY_REGION"
        n = self.ioctl_count
        self.ioctl_count += 1
        injected = self._fail_at.pop(n, None)
        err = injected if injected is not None else self._validate(slot, flags, gpa, size, hva)
        if err:
            raise MemslotError(name, err, slot=slot, gpa=gpa, size=size, flags=flags, hva=hva)
        tree = self._trees.setdefault(slot >> 16, IntervalTree())
        old = self._slots.get(slot)
        if old is not None:
            tree.removei(old.gpa, old.end, slot)
        if size == 0:
            self._slots.pop(slot, None)
            self._dirty.pop(slot, None)
        else:
            self._slots[slot] = Memslot(slot, flags, gpa, size, hva)
            tree.addi(gpa, gpa + size, slot)
            if not flags & KVM_MEM_LOG_DIRTY_PAGES:
                self._dirty.pop(slot, None)
            elif old is None or not old.flags & KVM_MEM_LOG_DIRTY_PAGES:
                self._dirty[slot] = set()
        self.timeline.append(tuple(sorted(self._slots.values(), key=lambda m: (m.as_id, m.gpa))))

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
        tree = self._trees.get(as_id)  # CREATE or MOVE: no overlap with another slot
        if tree is not None and any(iv.data != slot for iv in tree.overlap(gpa, gpa + size)):
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
        tree = self._trees.get(as_id)
        for iv in tree.at(gpa) if tree is not None else ():
            return self._slots[iv.data]
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

    # -- the timeline ------------------------------------------------------------------
    def mapping_at(self, instant: int, gpa: int, as_id: int = 0) -> tuple[int, bool] | None:
        """(host address, readonly) of ``gpa`` at ``instant``, or None in a hole."""
        for ms in self.timeline[instant]:
            if ms.as_id == as_id and ms.gpa <= gpa < ms.end:
                return (ms.hva_of(gpa), ms.readonly)
        return None

    def holes(self, t0: int, t1: int | None = None, as_id: int = 0) -> list[Hole]:
        """Bytes mapped at both ``t0`` and ``t1`` but unmapped in some state between."""
        t1 = self.now if t1 is None else t1
        states = self.timeline[t0 : t1 + 1]
        cuts = sorted(
            {b for st in states for ms in st if ms.as_id == as_id for b in (ms.gpa, ms.end)}
        )
        out: list[Hole] = []
        for lo, hi in itertools.pairwise(cuts):
            first = self.mapping_at(t0, lo, as_id)
            last = self.mapping_at(t1, lo, as_id)
            if first is None or last is None:
                continue
            steps = sum(1 for i in range(t0 + 1, t1) if self.mapping_at(i, lo, as_id) is None)
            if steps == 0:
                continue
            same = first == last
            prev = out[-1] if out else None
            if (
                prev
                and prev.gpa + prev.size == lo
                and (prev.steps, prev.same_mapping)
                == (
                    steps,
                    same,
                )
            ):
                out[-1] = Hole(prev.gpa, prev.size + hi - lo, steps, same)
            else:
                out.append(Hole(lo, hi - lo, steps, same))
        return out
