"""The KVM listener's layout policy (listeners/cost.py) on the simulated backend:
what must stay pause-free in ``auto`` does, and the slot table stays bounded over
long reshaping histories."""

from __future__ import annotations

import types

from hypothesis import given, settings
from hypothesis import strategies as st

from flatview import MemorySystem
from flatview.hostmem import PAGE_SIZE as PAGE
from flatview.pc import PcBoard
from kvm_backend.sim import SimVm
from listeners.kvm_listener import KvmMemoryListener
from listeners.slot_layout import desired_mappings
from listeners.testing.reshape import Reshaper

MiB = 1 << 20


def test_hotplug_grow_and_shrink_in_auto_mode_pause_nothing_and_unmap_nothing_unchanged() -> None:
    """The pcboot example's hotplug RAM (2 MiB, up to 8 MiB, at 1 GiB): grown to 8 MiB
    and shrunk back to 2 MiB by the guest, several times."""
    board = PcBoard(ram_size=512 * MiB, vga=False)
    hotplug = board.system.ram("hotplug-ram", 2 * MiB, max_size=8 * MiB)
    board.root.add_subregion(0x40000000, hotplug)
    kl = KvmMemoryListener(SimVm(), board.memory)
    for size in (8, 2, 8, 2, 4, 2):
        hotplug.set_size(size * MiB)
        p = kl.reports[-1].plan
        assert not p.needs_pause and p.unchanged_bytes_unmapped == 0, size
        assert p.ioctls > 0


def test_bar_add_move_and_remove_in_auto_mode_pause_nothing() -> None:
    board = PcBoard(ram_size=512 * MiB, vga=False)
    kl = KvmMemoryListener(SimVm(), board.memory)
    bar = board.system.ram_device("dev0.bar2", 64 << 10)
    board.pci.add_subregion(0xFEB00000, bar)
    bar.set_address(0xFEA00000)
    board.pci.del_subregion(bar)
    plans = [r.plan for r in kl.reports[-3:]]
    assert [p.ioctls for p in plans] == [1, 1, 1]  # create, MOVE, delete
    assert not any(p.needs_pause or p.unchanged_bytes_unmapped for p in plans)


def _reshaper(seed: int) -> Reshaper:
    """race_soak's reshaping workload over a plain memory system (no vCPUs)."""
    m = MemorySystem()
    harness = types.SimpleNamespace(
        memory=m,
        pages=64,
        base=0x10000000,
        system_region=m.ram("guest-system", 2 * MiB),
        data_region=m.ram("sweep-data", 64 * PAGE),
    )
    return Reshaper(harness, seed)  # type: ignore[arg-type]


@given(st.integers(0, 2**32))
@settings(max_examples=20, deadline=None)
def test_slot_count_stays_within_twice_a_qemu_style_table_in_auto_mode(seed: int) -> None:
    shaper = _reshaper(seed)
    kl = KvmMemoryListener(SimVm(), shaper.space)
    for _ in range(300):
        shaper.step()
        qemu_style = len(desired_mappings(shaper.space.flatview))
        assert len(kl.slots) <= 2 * qemu_style
        after = [s.mapping for s in kl.slots]
        for op in kl.reports[-1].plan.ops:  # merged slots stay small
            m = op.mapping
            if op.op == "delete" and any(
                a.same_bytes(m) and a.gpa < m.end and m.gpa < a.end for a in after
            ):
                assert m.size <= kl.merge_limit


def test_optimistic_mode_keeps_every_cut_so_its_table_grows_past_qemus() -> None:
    """The other side of the trade: never unmapping a byte that stays mapped means
    never merging slots back (documented; the bound holds for ``auto``)."""
    shaper = _reshaper(0)
    kl = KvmMemoryListener(SimVm(), shaper.space, mode="optimistic")
    worst = 0.0
    for _ in range(300):
        shaper.step()
        worst = max(worst, len(kl.slots) / len(desired_mappings(shaper.space.flatview)))
    assert worst > 2
