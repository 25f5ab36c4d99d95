"""SimVm enforces the kernel's memslot rules with the kernel's errnos."""

from __future__ import annotations

import errno

import pytest

from kvm_backend.errors import MemslotError
from kvm_backend.memslot import slot_number
from kvm_backend.sim import SimKvm, SimVm
from kvm_backend.testing.fault_injection import FaultInjector

HVA = 0x7F0000000000
MB = 1 << 20


def err_of(vm: SimVm, slot: int, flags: int, gpa: int, size: int, hva: int) -> int:
    try:
        vm.set_user_memory_region(slot, flags, gpa, size, hva)
    except MemslotError as e:
        return int(e.errno or 0)
    return 0


@pytest.fixture
def vm() -> SimVm:
    v = SimVm(SimKvm(nr_memslots=8))
    v.set_user_memory_region(0, 0, 0x100000, MB, HVA)
    return v


def test_misaligned_size_gpa_or_hva_is_einval(vm: SimVm) -> None:
    assert err_of(vm, 1, 0, 0x200000, 100, HVA) == errno.EINVAL
    assert err_of(vm, 1, 0, 0x200001, 4096, HVA) == errno.EINVAL
    assert err_of(vm, 1, 0, 0x200000, 4096, HVA + 1) == errno.EINVAL


def test_slot_id_and_address_space_out_of_range_is_einval(vm: SimVm) -> None:
    assert err_of(vm, 8, 0, 0x400000, 4096, HVA) == errno.EINVAL
    assert err_of(vm, slot_number(1, 0), 0, 0x400000, 4096, HVA) == errno.EINVAL
    assert err_of(vm, 7, 0, 0x400000, 4096, HVA) == 0


def test_unknown_flags_and_guest_memfd_are_einval(vm: SimVm) -> None:
    assert err_of(vm, 1, 4, 0x400000, 4096, HVA) == errno.EINVAL
    assert err_of(vm, 1, 4, 0x100000, 4096, HVA) == errno.EEXIST  # overlap checked first
    assert err_of(vm, 1, 5, 0x100000, 4096, HVA) == errno.EINVAL  # gmem excludes logging
    assert err_of(vm, 1, 8, 0x400000, 4096, HVA) == errno.EINVAL
    assert err_of(vm, 1, 3, 0x400000, 4096, HVA) == 0


def test_overlap_is_eexist_and_adjacency_is_fine(vm: SimVm) -> None:
    assert err_of(vm, 1, 0, 0x1FF000, 0x2000, HVA) == errno.EEXIST
    assert err_of(vm, 1, 0, 0x200000, 0x2000, HVA) == 0
    assert err_of(vm, 2, 0, 0xFF000, 0x1000, HVA) == 0


def test_delete_of_an_empty_slot_is_einval(vm: SimVm) -> None:
    assert err_of(vm, 3, 0, 0, 0, 0) == errno.EINVAL
    assert err_of(vm, 0, 0, 0, 0, 0) == 0


def test_in_place_changes_other_than_dirty_log_are_einval(vm: SimVm) -> None:
    assert err_of(vm, 0, 0, 0x100000, 2 * MB, HVA) == errno.EINVAL  # grow
    assert err_of(vm, 0, 0, 0x100000, MB, HVA + 4096) == errno.EINVAL  # new hva
    assert err_of(vm, 0, 2, 0x100000, MB, HVA) == errno.EINVAL  # readonly toggle
    assert err_of(vm, 0, 1, 0x100000, MB, HVA) == 0  # flags only
    assert err_of(vm, 0, 1, 0x100000, MB, HVA) == 0  # no-op
    assert err_of(vm, 0, 1, 0x300000, MB, HVA) == 0  # move


def test_move_onto_another_slot_is_eexist(vm: SimVm) -> None:
    vm.set_user_memory_region(1, 0, 0x400000, MB, HVA)
    assert err_of(vm, 1, 0, 0x180000, MB, HVA) == errno.EEXIST


def test_gpa_wrap_and_beyond_max_gfn_are_einval(vm: SimVm) -> None:
    assert err_of(vm, 1, 0, 2**64 - 4096, 8192, HVA) == errno.EINVAL
    assert err_of(vm, 1, 0, 1 << 52, 4096, HVA) == errno.EINVAL
    assert err_of(vm, 1, 0, (1 << 52) - 4096, 4096, HVA) == 0


def test_hva_past_the_user_range_is_einval(vm: SimVm) -> None:
    assert err_of(vm, 1, 0, 0x400000, 4096, (1 << 47) - 4096) == errno.EINVAL
    assert err_of(vm, 1, 0, 0x400000, 4096, (1 << 47) - 8192) == 0


def test_injected_failure_hits_the_kth_ioctl_and_changes_nothing(vm: SimVm) -> None:
    fi = FaultInjector(vm)
    fi.inject_failure(1, errno.ENOMEM)
    fi.set_user_memory_region(1, 0, 0x400000, 4096, HVA)
    before = vm.slots()
    with pytest.raises(MemslotError) as ei:
        fi.set_user_memory_region(2, 0, 0x500000, 4096, HVA)
    assert ei.value.errno == errno.ENOMEM and vm.slots() == before
    fi.set_user_memory_region(2, 0, 0x500000, 4096, HVA)
    assert fi.timeline is vm.timeline and len(vm.slots()) == len(before) + 1


def test_timeline_reports_the_hole_of_a_delete_then_create(vm: SimVm) -> None:
    t0 = vm.timeline.now
    vm.set_user_memory_region(0, 0, 0, 0, 0)
    vm.set_user_memory_region(0, 0, 0x100000, MB // 2, HVA)
    vm.set_user_memory_region(1, 0, 0x180000, MB // 2, HVA + MB // 2)
    holes = vm.timeline.holes(t0)
    assert [(h.gpa, h.size, h.steps, h.same_mapping) for h in holes] == [
        (0x100000, MB // 2, 1, True),
        (0x180000, MB // 2, 2, True),
    ]


def test_timeline_sees_no_hole_for_grow_by_adjacent_slot(vm: SimVm) -> None:
    t0 = vm.timeline.now
    vm.set_user_memory_region(1, 0, 0x200000, MB, HVA + MB)
    assert vm.timeline.holes(t0) == []


def test_dirty_bits_are_kept_per_slot_and_lost_on_delete(vm: SimVm) -> None:
    vm.set_user_memory_region(0, 1, 0x100000, MB, HVA)
    assert vm.touch(0x100000 + 5 * 4096)
    bitmap = vm.get_dirty_log(0)
    assert bitmap[0] == 1 << 5 and vm.get_dirty_log(0)[0] == 0
    vm.touch(0x100000)
    vm.set_user_memory_region(0, 0, 0, 0, 0)
    vm.set_user_memory_region(0, 1, 0x100000, MB, HVA)
    assert vm.get_dirty_log(0)[0] == 0
    assert not vm.touch(0x50000)
