"""The race on real KVM: delete + re-create of a slot under running vCPUs is
guest-visible; the same updates inside pause_all()/resume_all() are not."""

from __future__ import annotations

import pytest

from flatview.hostmem import PAGE_SIZE as PAGE
from kvm_backend.kvm import Kvm
from kvm_backend.testing.sweep import SweepHarness

UPDATES = 500
VCPUS = 4


def relayout(h: SweepHarness) -> None:
    h.vm.set_user_memory_region(1, 0, 0, 0, 0)
    h.vm.set_user_memory_region(1, 0, h.base, h.pages * PAGE, h.data.host_addr)


@pytest.mark.kvm
def test_naive_delete_recreate_under_running_vcpus_is_guest_visible(kvm: Kvm) -> None:
    with SweepHarness(kvm, VCPUS) as h:
        h.map_data()
        h.start()
        assert h.wait_sweeps(10)
        for _ in range(UPDATES):
            relayout(h)
        r = h.finish()
    print(f"\nnaive: {r}")
    assert r.faults > 0
    assert r.mmio > 0


@pytest.mark.kvm
def test_paused_delete_recreate_is_invisible_to_the_guest(kvm: Kvm) -> None:
    with SweepHarness(kvm, VCPUS) as h:
        h.map_data()
        h.start()
        assert h.wait_sweeps(10)
        before = h.sweeps()
        for _ in range(UPDATES):
            h.runner.pause_all()
            relayout(h)
            h.runner.resume_all()
        assert h.runner.pause_count == UPDATES
        assert h.wait_sweeps(1)
        r = h.finish()
    print(f"\npaused: {r}")
    assert r.faults == 0
    assert (r.mmio, r.mismatch, r.lost_writes, r.stops) == (0, 0, 0, ())
    assert r.sweeps > before
    assert r.guest_writes > 0
