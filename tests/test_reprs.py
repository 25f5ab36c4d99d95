"""Values that carry addresses print them in hex; views, sections, slots and plans
print in QEMU's notation (``info mtree -f`` lines, ``kvm_set_user_memory`` traces)."""

from __future__ import annotations

import re

from flatview import AddressSpace, MemorySystem
from kvm_backend import SimVm
from kvm_backend.memslot import Memslot
from kvm_backend.timeline import Hole
from listeners import KvmMemoryListener
from tests.test_cli import QEMU10_TRACE

DECIMAL_ADDRESS = re.compile(r"(addr|size|gpa|hva|offset_in_region|block_offset|start|end)=\d{4,}")


def board() -> tuple[AddressSpace, KvmMemoryListener]:
    s = MemorySystem()
    root = s.container("system", 1 << 32)
    root.add_subregion(0x10000000, s.ram("ram", 0x100000))
    space = AddressSpace(root, "memory")
    return space, KvmMemoryListener(SimVm(), space)


def test_address_carrying_values_repr_in_hex() -> None:
    space, kl = board()
    fr = space.flatview.ranges[0]
    shown = [
        repr(fr),
        repr(space.section(fr)),
        repr(kl.slots[0]),
        repr(kl.slots[0].mapping),
        repr(space.placements()[1]),
        repr(Memslot(1, 2, 0x10000000, 0x100000, 0x7F0000000000)),
        repr(Hole(0x10000000, 0x1000, 1, True)),
        repr(space),
    ]
    for text in shown:
        assert not DECIMAL_ADDRESS.search(text), text
    assert "addr=0x10000000" in repr(fr) and "gpa=0x10000000" in repr(kl.slots[0])
    assert repr(space) == "<AddressSpace 'memory' root='system' ranges=1>"


def test_views_sections_slots_and_plans_print_in_qemu_notation() -> None:
    space, kl = board()
    line = "0000000010000000-00000000100fffff (prio 0, ram): ram"
    assert str(space.flatview) == f"  {line}"
    assert str(space) == f'AS "memory", root: system\n  {line}'
    assert str(space.section(space.flatview.ranges[0])) == f'AS "memory": {line}'
    assert str(kl.slots[0]).startswith("slot   0 gpa=0x10000000 size=0x100000 flags=0x0 ua=0x")
    plan = kl.last_report.plan
    assert all(QEMU10_TRACE.match(t) for t in str(plan).splitlines())
    assert str(plan).count("\n") == plan.ioctls - 1
