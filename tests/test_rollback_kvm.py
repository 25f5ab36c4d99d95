"""On real KVM with running vCPUs: a commit failing at a sampled ioctl position is
rolled back; the kernel's slot table is the one before the commit, and the next
commit succeeds."""

from __future__ import annotations

import errno
import random

import pytest

from flatview.hostmem import PAGE_SIZE as PAGE
from kvm_backend.errors import CommitError, MemslotError
from kvm_backend.kvm import Kvm, Vm
from kvm_backend.memslot import Memslot
from kvm_backend.testing.fault_injection import FaultInjector
from kvm_backend.testing.sweep import SweepHarness
from listeners.kvm_listener import KvmMemoryListener
from listeners.testing.reshape import Reshaper


def kernel_occupancy_matches(vm: Vm, table: dict[int, Memslot], lo: int, hi: int) -> bool:
    """Probe the kernel: every expected slot's start is occupied (EEXIST) and every
    page-aligned gap start in [lo, hi) is free."""
    probe = vm.nr_memslots - 1
    starts = sorted((m.gpa, m.end) for m in table.values())
    gaps = []
    cur = lo
    for a, b in starts:
        if a > cur:
            gaps.append(cur)
        cur = max(cur, b)
    if cur < hi:
        gaps.append(cur)
    for gpa, _ in starts:
        try:
            vm.set_user_memory_region(probe, 0, gpa, PAGE, 0x10000)
        except MemslotError as e:
            if e.errno != errno.EEXIST:
                return False
            continue
        vm.set_user_memory_region(probe, 0, 0, 0, 0)
        return False
    for gpa in gaps:
        try:
            vm.set_user_memory_region(probe, 0, gpa, PAGE, 0x10000)
        except MemslotError:
            return False
        vm.set_user_memory_region(probe, 0, 0, 0, 0)
    return True


@pytest.mark.kvm
def test_failure_at_sampled_positions_rolls_back_on_real_kvm(kvm: Kvm) -> None:
    rng = random.Random(11)
    h = SweepHarness(kvm, 2, direct=False)
    try:
        shaper = Reshaper(h, seed=2)
        backend = FaultInjector(h.vm)
        kl = KvmMemoryListener(backend, shaper.space, vcpus=h.runner, mode="auto")
        h.start()
        lo, hi = 0, h.base + (h.pages + 200) * PAGE
        failures = 0
        for _ in range(40):
            kind = rng.choice(("boundary", "shadow", "move"))
            before = h.vm.slots()
            pending = kl.plan_now()  # nothing pending: 0 ops
            assert pending.ioctls == 0
            backend.inject_failure(0)
            try:
                shaper.do(kind)
            except CommitError:
                failures += 1
                assert h.vm.slots() == before
                assert kernel_occupancy_matches(h.vm, before, lo, hi)
                n = kl.plan_now().ioctls
                k = rng.randrange(1, n) if n > 1 else 0
                if k:
                    backend.inject_failure(k)
                    with pytest.raises(CommitError):
                        kl.apply()
                    assert h.vm.slots() == before
                    assert kernel_occupancy_matches(h.vm, before, lo, hi)
                kl.apply()
            else:
                backend._fail.clear()
            assert kernel_occupancy_matches(h.vm, h.vm.slots(), lo, hi)
        r = h.finish()
    finally:
        h.close()
    assert failures > 20
    assert (r.mmio, r.mismatch, r.stops, r.lost_writes) == (0, 0, (), 0)
