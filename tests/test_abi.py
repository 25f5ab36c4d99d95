"""The hand-declared structs and computed ioctl numbers match the kernel ABI."""

from __future__ import annotations

import pytest

from kvm_backend import abi
from kvm_backend.abi import ffi


@pytest.mark.parametrize(
    ("struct", "size"),
    [
        ("struct kvm_userspace_memory_region", 32),
        ("struct kvm_userspace_memory_region2", 160),
        ("struct kvm_dirty_log", 16),
        ("struct kvm_clear_dirty_log", 24),
        ("struct kvm_enable_cap", 104),
        ("struct kvm_regs", 144),
        ("struct kvm_sregs", 312),
        ("struct kvm_translation", 24),
        ("struct kvm_cpuid_entry2", 40),
        ("struct kvm_run", 2352),
    ],
)
def test_struct_size(struct: str, size: int) -> None:
    assert ffi.sizeof(struct) == size


@pytest.mark.parametrize(
    ("field", "offset"),
    [("immediate_exit", 1), ("exit_reason", 8), ("u", 32), ("kvm_valid_regs", 288), ("s", 304)],
)
def test_kvm_run_offsets(field: str, offset: int) -> None:
    assert ffi.offsetof("struct kvm_run", field) == offset


def test_exit_union_member_offsets() -> None:
    assert ffi.offsetof("struct kvm_run_mmio", "len") == 16
    assert ffi.offsetof("struct kvm_run_mmio", "is_write") == 20
    assert ffi.offsetof("struct kvm_run_io", "data_offset") == 8
    assert ffi.offsetof("struct kvm_run_emulation_failure", "insn_size") == 16


@pytest.mark.parametrize(
    ("name", "number"),
    [
        ("KVM_GET_API_VERSION", 0xAE00),
        ("KVM_CREATE_VM", 0xAE01),
        ("KVM_CHECK_EXTENSION", 0xAE03),
        ("KVM_GET_VCPU_MMAP_SIZE", 0xAE04),
        ("KVM_CREATE_VCPU", 0xAE41),
        ("KVM_SET_NR_MMU_PAGES", 0xAE44),
        ("KVM_SET_USER_MEMORY_REGION", 0x4020AE46),
        ("KVM_SET_USER_MEMORY_REGION2", 0x40A0AE49),
        ("KVM_GET_DIRTY_LOG", 0x4010AE42),
        ("KVM_CLEAR_DIRTY_LOG", 0xC018AEC0),
        ("KVM_ENABLE_CAP", 0x4068AEA3),
        ("KVM_RUN", 0xAE80),
        ("KVM_GET_REGS", 0x8090AE81),
        ("KVM_SET_REGS", 0x4090AE82),
        ("KVM_GET_SREGS", 0x8138AE83),
        ("KVM_SET_SREGS", 0x4138AE84),
        ("KVM_TRANSLATE", 0xC018AE85),
        ("KVM_SET_SIGNAL_MASK", 0x4004AE8B),
    ],
)
def test_ioctl_number(name: str, number: int) -> None:
    assert getattr(abi, name) == number
