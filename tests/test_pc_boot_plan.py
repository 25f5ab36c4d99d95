"""SeaBIOS's PAM writes on the pc board through the KVM listener (simulated KVM)."""

from __future__ import annotations

from flatview.pc import PcBoard
from kvm_backend.sim import SimVm
from listeners.kvm_listener import KvmMemoryListener

QEMU10 = [(4, 4), (4, 1), (1, 5), (2, 2)]


def replay(**options: object) -> list[tuple[int, int, int, int, int]]:
    board = PcBoard(ram_size=512 << 20, vga=False)
    vm = SimVm()
    kl = KvmMemoryListener(vm, board.memory, **options)  # type: ignore[arg-type]
    rows = []
    for _label, addr, value in board.seabios_pam_sequence():
        t0 = vm.timeline.now
        board.write_config(addr, value.to_bytes(4, "little"))
        p = kl.reports[-1].plan
        q = kl.reports[-1].summary()
        same = sum(h.size for h in vm.timeline.holes(t0) if h.same_mapping)
        assert same == p.unchanged_bytes_unmapped
        rows.append(
            (
                p.count("delete"),
                p.count("create"),
                p.remapped_bytes,
                p.unchanged_bytes_unmapped,
                q.qemu_ioctls,
            )
        )
    return rows


def test_qemu_like_planner_reproduces_qemu10s_ioctls() -> None:
    rows = replay(qemu_like=True)
    assert [(d, c) for d, c, *_ in rows] == QEMU10
    assert all(unchanged > 0 for *_, unchanged, _q in rows)


def test_tree_aware_layout_unmaps_no_unchanged_byte() -> None:
    rows = replay()
    assert [unchanged for *_, unchanged, _q in rows] == [0, 0, 0, 0]
    assert [remapped for _d, _c, remapped, _u, _q in rows] == [0x20000, 0x20000, 0x20000, 0x18000]
    assert [q for *_, q in rows] == [d + c for d, c in QEMU10]


def test_q35_sequence_groups_segments_by_mch_registers_and_unmaps_no_unchanged_byte() -> None:
    board = PcBoard(ram_size=512 << 20, vga=False, machine="q35")
    seq = board.seabios_pam_sequence()
    assert [(a, v) for _, a, v in seq] == [
        (0x90, 0x33333330),
        (0x94, 0x00333333),
        (0x90, 0x11111110),
        (0x94, 0x00331111),
    ]
    vm = SimVm()
    kl = KvmMemoryListener(vm, board.memory)
    values = []
    for _label, addr, value in seq:
        t0 = vm.timeline.now
        board.write_config(addr, value.to_bytes(4, "little"))
        values.append(list(board.pam_values))
        assert kl.reports[-1].plan.unchanged_bytes_unmapped == 0
        assert not [h for h in vm.timeline.holes(t0) if h.same_mapping]
    assert values[0] == [3] * 7 + [0] * 6  # the MCH's first dword covers segments 0-6
    assert values[3] == [1] * 11 + [3] * 2
