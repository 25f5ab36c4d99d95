"""The KVM ABI for x86-64 in cffi ABI mode: structs declared by hand, ioctl numbers
computed from ``_IOC`` and ``ffi.sizeof`` so they cannot drift from the structs.

No compiler is involved: the structs are added to the project's one libc binding
(``flatview._libc``), whose ``ioctl`` releases the GIL while it runs (so a blocking
``KVM_RUN`` stalls no other thread) and never retries on EINTR (unlike
``fcntl.ioctl`` on CPython 3.14).
"""

from __future__ import annotations

from flatview._libc import (
    MAP_FAILED,
    MAP_SHARED,
    O_CLOEXEC,
    O_RDWR,
    PROT_READ,
    PROT_WRITE,
    ffi,
    libc,
)

ffi.cdef(
    """
    struct kvm_userspace_memory_region {
        uint32_t slot; uint32_t flags;
        uint64_t guest_phys_addr; uint64_t memory_size; uint64_t userspace_addr;
    };
    struct kvm_userspace_memory_region2 {
        uint32_t slot; uint32_t flags;
        uint64_t guest_phys_addr; uint64_t memory_size; uint64_t userspace_addr;
        uint64_t guest_memfd_offset; uint32_t guest_memfd; uint32_t pad1; uint64_t pad2[14];
    };
    struct kvm_dirty_log { uint32_t slot; uint32_t padding1; void *dirty_bitmap; };
    struct kvm_clear_dirty_log {
        uint32_t slot; uint32_t num_pages; uint64_t first_page; void *dirty_bitmap;
    };
    struct kvm_enable_cap { uint32_t cap; uint32_t flags; uint64_t args[4]; uint8_t pad[64]; };
    struct kvm_pit_config { uint32_t flags; uint32_t pad[15]; };
    struct kvm_mp_state { uint32_t mp_state; };
    struct kvm_msr_entry { uint32_t index; uint32_t reserved; uint64_t data; };
    struct kvm_msrs { uint32_t nmsrs; uint32_t pad; struct kvm_msr_entry entries[]; };
    struct kvm_reinject_control { uint8_t pit_reinject; uint8_t reserved[31]; };
    struct kvm_regs {
        uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
        uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
        uint64_t rip, rflags;
    };
    struct kvm_segment {
        uint64_t base; uint32_t limit; uint16_t selector;
        uint8_t type, present, dpl, db, s, l, g, avl, unusable, padding;
    };
    struct kvm_dtable { uint64_t base; uint16_t limit; uint16_t padding[3]; };
    struct kvm_sregs {
        struct kvm_segment cs, ds, es, fs, gs, ss, tr, ldt;
        struct kvm_dtable gdt, idt;
        uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base;
        uint64_t interrupt_bitmap[4];
    };
    struct kvm_translation {
        uint64_t linear_address; uint64_t physical_address;
        uint8_t valid; uint8_t writeable; uint8_t usermode; uint8_t pad[5];
    };
    struct kvm_cpuid_entry2 {
        uint32_t function; uint32_t index; uint32_t flags;
        uint32_t eax, ebx, ecx, edx; uint32_t padding[3];
    };
    struct kvm_cpuid2 { uint32_t nent; uint32_t padding; struct kvm_cpuid_entry2 entries[]; };
    struct kvm_signal_mask_hdr { uint32_t len; };
    struct kvm_run_io {
        uint8_t direction; uint8_t size; uint16_t port; uint32_t count; uint64_t data_offset;
    };
    struct kvm_run_mmio { uint64_t phys_addr; uint8_t data[8]; uint32_t len; uint8_t is_write; };
    struct kvm_run_internal { uint32_t suberror; uint32_t ndata; uint64_t data[16]; };
    struct kvm_run_emulation_failure {
        uint32_t suberror; uint32_t ndata; uint64_t flags;
        uint8_t insn_size; uint8_t insn_bytes[15];
    };
    struct kvm_run_fail_entry { uint64_t hardware_entry_failure_reason; uint32_t cpu; };
    struct kvm_run_system_event { uint32_t type; uint32_t ndata; uint64_t data[16]; };
    struct kvm_run_memory_fault { uint64_t flags; uint64_t gpa; uint64_t size; };
    struct kvm_run {
        uint8_t request_interrupt_window;
        uint8_t immediate_exit;
        uint8_t padding1[6];
        uint32_t exit_reason;
        uint8_t ready_for_interrupt_injection;
        uint8_t if_flag;
        uint16_t flags;
        uint64_t cr8;
        uint64_t apic_base;
        union {
            struct kvm_run_io io;
            struct kvm_run_mmio mmio;
            struct kvm_run_internal internal;
            struct kvm_run_emulation_failure emulation_failure;
            struct kvm_run_fail_entry fail_entry;
            struct kvm_run_system_event system_event;
            struct kvm_run_memory_fault memory_fault;
            char padding[256];
        } u;
        uint64_t kvm_valid_regs;
        uint64_t kvm_dirty_regs;
        union { char padding[2048]; } s;
    };
    """
)

KVMIO = 0xAE
_IOC_NONE, _IOC_WRITE, _IOC_READ = 0, 1, 2


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (KVMIO << 8) | nr


def _io(nr: int) -> int:
    return _ioc(_IOC_NONE, nr, 0)


def _iow(nr: int, struct: str) -> int:
    return _ioc(_IOC_WRITE, nr, ffi.sizeof(struct))


def _ior(nr: int, struct: str) -> int:
    return _ioc(_IOC_READ, nr, ffi.sizeof(struct))


def _iowr(nr: int, struct: str) -> int:
    return _ioc(_IOC_READ | _IOC_WRITE, nr, ffi.sizeof(struct))


# /dev/kvm
KVM_GET_API_VERSION = _io(0x00)
KVM_CREATE_VM = _io(0x01)
KVM_CHECK_EXTENSION = _io(0x03)
KVM_GET_VCPU_MMAP_SIZE = _io(0x04)
KVM_GET_SUPPORTED_CPUID = _iowr(0x05, "struct kvm_cpuid2")
# VM
KVM_CREATE_VCPU = _io(0x41)
KVM_GET_DIRTY_LOG = _iow(0x42, "struct kvm_dirty_log")
KVM_SET_NR_MMU_PAGES = _io(0x44)
KVM_SET_USER_MEMORY_REGION = _iow(0x46, "struct kvm_userspace_memory_region")
KVM_SET_USER_MEMORY_REGION2 = _iow(0x49, "struct kvm_userspace_memory_region2")
KVM_ENABLE_CAP = _iow(0xA3, "struct kvm_enable_cap")
KVM_CREATE_IRQCHIP = _io(0x60)
KVM_SET_MP_STATE = _iow(0x99, "struct kvm_mp_state")
KVM_MP_STATE_RUNNABLE = 0
KVM_MP_STATE_UNINITIALIZED = 1
"""An application processor waiting for INIT and SIPI."""
KVM_SET_MSRS = _iow(0x89, "struct kvm_msrs")
KVM_CREATE_PIT2 = _iow(0x77, "struct kvm_pit_config")
KVM_REINJECT_CONTROL = _io(0x71)
KVM_CLEAR_DIRTY_LOG = _iowr(0xC0, "struct kvm_clear_dirty_log")
# vCPU
KVM_RUN = _io(0x80)
KVM_GET_REGS = _ior(0x81, "struct kvm_regs")
KVM_SET_REGS = _iow(0x82, "struct kvm_regs")
KVM_GET_SREGS = _ior(0x83, "struct kvm_sregs")
KVM_SET_SREGS = _iow(0x84, "struct kvm_sregs")
KVM_TRANSLATE = _iowr(0x85, "struct kvm_translation")
KVM_SET_SIGNAL_MASK = _iow(0x8B, "struct kvm_signal_mask_hdr")
KVM_SET_CPUID2 = _iow(0x90, "struct kvm_cpuid2")

KVM_API_VERSION = 12

# capabilities
KVM_CAP_USER_MEMORY = 3
KVM_CAP_NR_MEMSLOTS = 10
KVM_CAP_READONLY_MEM = 81
KVM_CAP_MULTI_ADDRESS_SPACE = 118
KVM_CAP_IMMEDIATE_EXIT = 136
KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 = 168
KVM_CAP_EXIT_ON_EMULATION_FAILURE = 204
KVM_CAP_DISABLE_QUIRKS2 = 213
KVM_X86_QUIRK_SLOT_ZAP_ALL = 1 << 7
"""DELETE and MOVE of a memslot zap every mapping of the VM (the default, 6.12+)."""
KVM_CAP_USER_MEMORY2 = 231
KVM_CAP_GUEST_MEMFD = 234

# memslot flags
KVM_MEM_LOG_DIRTY_PAGES = 1 << 0
KVM_MEM_READONLY = 1 << 1
KVM_MEM_GUEST_MEMFD = 1 << 2

KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE = 1 << 0
KVM_DIRTY_LOG_INITIALLY_SET = 1 << 1

# exit reasons
KVM_EXIT_UNKNOWN = 0
KVM_EXIT_IO = 2
KVM_EXIT_HLT = 5
KVM_EXIT_MMIO = 6
KVM_EXIT_SHUTDOWN = 8
KVM_EXIT_FAIL_ENTRY = 9
KVM_EXIT_INTR = 10
KVM_EXIT_INTERNAL_ERROR = 17
KVM_EXIT_SYSTEM_EVENT = 24
KVM_EXIT_MEMORY_FAULT = 39

EXIT_NAMES = {
    KVM_EXIT_UNKNOWN: "UNKNOWN",
    KVM_EXIT_IO: "IO",
    KVM_EXIT_HLT: "HLT",
    KVM_EXIT_MMIO: "MMIO",
    KVM_EXIT_SHUTDOWN: "SHUTDOWN",
    KVM_EXIT_FAIL_ENTRY: "FAIL_ENTRY",
    KVM_EXIT_INTR: "INTR",
    KVM_EXIT_INTERNAL_ERROR: "INTERNAL_ERROR",
    KVM_EXIT_SYSTEM_EVENT: "SYSTEM_EVENT",
    KVM_EXIT_MEMORY_FAULT: "MEMORY_FAULT",
}

KVM_INTERNAL_ERROR_EMULATION = 1
KVM_INTERNAL_ERROR_SIMUL_EX = 2
KVM_INTERNAL_ERROR_DELIVERY_EV = 3
KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON = 4

KVM_EXIT_IO_IN, KVM_EXIT_IO_OUT = 0, 1

__all__ = [
    "MAP_FAILED",
    "MAP_SHARED",
    "O_CLOEXEC",
    "O_RDWR",
    "PROT_READ",
    "PROT_WRITE",
    "ffi",
    "libc",
]
