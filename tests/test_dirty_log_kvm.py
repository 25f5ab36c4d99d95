"""On real KVM: guests write pages while the host splits, shrinks, merges and
deletes dirty-logged ranges; every page whose contents changed is reported dirty."""

from __future__ import annotations

import random

import pytest

from flatview.hostmem import PAGE_SIZE as PAGE
from kvm_backend.kvm import Kvm
from kvm_backend.testing import guest_code as gc
from kvm_backend.testing.sweep import SweepHarness
from listeners.kvm_listener import KvmMemoryListener, Mode
from listeners.testing.reshape import Reshaper

STEPS = 150


def snapshot(h: SweepHarness) -> list[bytes]:
    return [h.data.read(p * PAGE, PAGE) for p in range(h.pages)]


@pytest.mark.kvm
@pytest.mark.parametrize("mode", ["auto", "optimistic"])
def test_no_dirty_page_is_lost_across_reslotting(kvm: Kvm, mode: Mode) -> None:
    rng = random.Random(3)
    h = SweepHarness(kvm, 2, direct=False, code=gc.SCRIBBLE)
    try:
        shaper = Reshaper(h, seed=5)
        h.data_region.log_start("migration")
        kl = KvmMemoryListener(h.vm, shaper.space, vcpus=h.runner, mode=mode)
        h.start()
        h.runner.pause_all()
        kl.sync_dirty_log()
        h.take_dirty()
        before = snapshot(h)
        h.runner.resume_all()
        changed_total = reported_total = deleted = 0
        for _ in range(STEPS):
            kind = rng.choice(("boundary", "boundary", "shadow", "hi-off", "hi-on"))
            if kind == "hi-off":
                deleted += shaper.hi.enabled
                shaper.hi.set_enabled(False)
            elif kind == "hi-on":
                shaper.hi.set_enabled(True)
            else:
                shaper.do(kind)
            h.wait_sweeps(1, timeout=1.0)
            h.runner.pause_all()
            kl.sync_dirty_log()
            dirty = set(
                h.data_region.snapshot_and_clear_dirty(0, h.data_region.size, "migration").pages
            )
            after = snapshot(h)
            h.runner.resume_all()
            changed = {p for p in range(h.pages) if after[p] != before[p]}
            assert changed <= dirty, f"lost dirty pages {sorted(changed - dirty)} after {kind}"
            changed_total += len(changed)
            reported_total += len(dirty)
            before = after
        h.finish()
    finally:
        h.close()
    print(
        f"\n{mode}: changed pages {changed_total}, reported {reported_total}, hi deleted {deleted}"
    )
    assert changed_total > STEPS * 10 and deleted > 10
