"""On real KVM: 4 vCPUs at CPL3 sweep the ranges being reshaped; 500 random
split/merge/grow/shrink/move/readonly/dirty-log commits.  auto and optimistic show
no guest-visible fault and lose no write; naive (no pause, no repair) does fault."""

from __future__ import annotations

import pytest

from kvm_backend.kvm import Kvm
from kvm_backend.kvm_listener import KvmMemoryListener, Mode
from kvm_backend.reshape import Reshaper
from kvm_backend.sweep import SweepHarness, SweepResult

COMMITS = 500
VCPUS = 4


def run(kvm: Kvm, mode: Mode, seed: int = 7) -> tuple[SweepResult, KvmMemoryListener, Reshaper]:
    h = SweepHarness(kvm, VCPUS, direct=False)
    try:
        shaper = Reshaper(h, seed)
        kl = KvmMemoryListener(h.vm, shaper.space, vcpus=h.runner, mode=mode)
        h.start()
        assert h.wait_sweeps(5)
        for _ in range(COMMITS):
            shaper.step()
        assert h.wait_sweeps(2) or mode == "naive"
        return h.finish(), kl, shaper
    finally:
        h.close()


@pytest.mark.kvm
@pytest.mark.parametrize("mode", ["auto", "optimistic"])
def test_safe_modes_show_no_fault_and_lose_no_write(kvm: Kvm, mode: Mode) -> None:
    r, kl, shaper = run(kvm, mode)
    plans = [rep.plan for rep in kl.reports]
    print(
        f"\n{mode}: {r} commits={len(plans)} kinds={shaper.counts} "
        f"paused={sum(rep.paused for rep in kl.reports)} "
        f"repaired={kl.window.repaired_mmio if kl.window else 0}"
    )
    assert (r.faults, r.mmio, r.mismatch, r.stops, r.lost_writes) == (0, 0, 0, (), 0)
    assert r.guest_writes > 0
    assert all(v > 50 for v in shaper.counts.values())
    assert sum(p.count("move") for p in plans) > 0
    assert sum(p.needs_pause for p in plans) > 50  # the workload really remaps
    if mode == "optimistic":
        assert not any(rep.paused for rep in kl.reports)


@pytest.mark.kvm
def test_naive_mode_shows_guest_visible_faults(kvm: Kvm) -> None:
    r, _kl, _ = run(kvm, "naive")
    print(f"\nnaive: {r}")
    assert r.faults + max(r.lost_writes, 0) > 0
    assert r.faults > 0
