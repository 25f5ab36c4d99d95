"""On real KVM: 4 vCPUs at CPL3 sweep the ranges being reshaped; 500 random
split/merge/grow/shrink/move/readonly/dirty-log commits.  auto and optimistic show
no guest-visible fault and lose no write; naive (no pause, no repair) does fault."""

from __future__ import annotations

import pytest

from kvm_backend.kvm import Kvm
from listeners.kvm_listener import Mode
from listeners.testing.reshape import ReshapeRun, run_reshape

COMMITS = 500
VCPUS = 4


def run(kvm: Kvm, mode: Mode, seed: int = 7) -> ReshapeRun:
    return run_reshape(kvm, VCPUS, mode, COMMITS, seed)


@pytest.mark.kvm
@pytest.mark.parametrize("mode", ["auto", "optimistic"])
def test_safe_modes_show_no_fault_and_lose_no_write(kvm: Kvm, mode: Mode) -> None:
    run_ = run(kvm, mode)
    r, reports = run_.result, run_.reports
    plans = [rep.plan for rep in reports]
    print(
        f"\n{mode}: {r} commits={len(plans)} kinds={run_.counts} "
        f"paused={sum(rep.paused for rep in reports)} repaired={run_.repaired_mmio}"
    )
    assert (r.faults, r.mmio, r.mismatch, r.stops, r.lost_writes) == (0, 0, 0, (), 0)
    assert r.guest_writes > 0
    assert all(v > 50 for v in run_.counts.values())
    assert run_.progressed
    assert sum(p.count("move") for p in plans) > 0
    assert sum(p.needs_pause for p in plans) > 50  # the workload really remaps
    if mode == "optimistic":
        assert not any(rep.paused for rep in reports)
        assert run_.repaired_mmio > 0


@pytest.mark.kvm
def test_naive_mode_shows_guest_visible_faults(kvm: Kvm) -> None:
    r = run(kvm, "naive").result
    print(f"\nnaive: {r}")
    assert r.faults + max(r.lost_writes, 0) > 0
    assert r.faults > 0
