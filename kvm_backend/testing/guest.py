"""A minimal 64-bit long-mode guest whose code runs at CPL3.

On hosts like ours (``kvm_pvm``, shadow paging) CPL0 code always runs in KVM's
instruction emulator; only CPL3 long-mode code runs natively.  So no guest code
ever runs at CPL0 here: each vCPU is put straight into 64-bit user mode through
``KVM_SET_SREGS``.  The *system* block (mapped at guest-physical 0) holds the
identity page tables (4 GiB in 2 MiB user pages), a GDT, a 64-bit TSS whose I/O
permission bitmap allows every port (IOPL is ignored on this host), the code and
per-vCPU stacks.  The IDT is empty, so any guest exception is a triple fault:
``KVM_EXIT_SHUTDOWN``.
"""

from __future__ import annotations

import struct
from typing import Any

from kvm_backend.kvm import Kvm, Vcpu

SYSTEM_SIZE = 0x100000
"""Bytes of the system block (slot 0 at guest-physical 0)."""

PML4, PDPT, PD = 0x1000, 0x2000, 0x3000
GDT = 0x7000
TSS = 0x8000
TSS_LIMIT = 104 + 8192
CODE = 0x10000
STACKS = 0x20000
DATA = 0x40000
"""Stable guest data: the stop flag at DATA, per-vCPU progress counters after it."""

STOP_FLAG = DATA
PROGRESS = DATA + 0x100

SEL_USER_DATA = 0x18 | 3
SEL_USER_CODE = 0x20 | 3
SEL_TSS = 0x28

_PTE_P, _PTE_RW, _PTE_US, _PTE_PS = 0x1, 0x2, 0x4, 0x80


def progress_addr(vcpu: int) -> int:
    return PROGRESS + 8 * vcpu


def write_system_tables(mem: memoryview, code: bytes) -> None:
    """Fill a zeroed system block: page tables, GDT, TSS and ``code`` at CODE."""
    if len(mem) < SYSTEM_SIZE:
        raise ValueError(f"system block needs {SYSTEM_SIZE:#x} bytes, got {len(mem):#x}")
    user = _PTE_P | _PTE_RW | _PTE_US
    struct.pack_into("<Q", mem, PML4, PDPT | user)
    for i in range(4):
        struct.pack_into("<Q", mem, PDPT + 8 * i, (PD + 0x1000 * i) | user)
    for j in range(4 * 512):
        struct.pack_into("<Q", mem, PD + 8 * j, (j << 21) | user | _PTE_PS)
    gdt = [
        0,
        0x00AF9A000000FFFF,  # 0x08 kernel code64
        0x00CF92000000FFFF,  # 0x10 kernel data
        0x00CFF2000000FFFF,  # 0x18 user data, DPL3
        0x00AFFA000000FFFF,  # 0x20 user code64, DPL3
    ]
    lo = (TSS_LIMIT & 0xFFFF) | ((TSS & 0xFFFFFF) << 16) | (0x89 << 40)
    lo |= ((TSS_LIMIT >> 16) & 0xF) << 48 | ((TSS >> 24) & 0xFF) << 56
    gdt += [lo, TSS >> 32]  # 0x28: 64-bit available TSS (16 bytes)
    for i, d in enumerate(gdt):
        struct.pack_into("<Q", mem, GDT + 8 * i, d)
    struct.pack_into("<H", mem, TSS + 0x66, 104)  # I/O map base: right after the TSS
    mem[TSS + 104 : TSS + 104 + 8192] = bytes(8192)  # every port allowed
    mem[TSS + TSS_LIMIT] = 0xFF
    mem[CODE : CODE + len(code)] = code


def _segment(seg: Any, selector: int, *, code: bool, dpl: int) -> None:
    seg.base = 0
    seg.limit = 0xFFFFFFFF
    seg.selector = selector
    seg.type = 0xB if code else 0x3
    seg.present = 1
    seg.dpl = dpl
    seg.db = 0 if code else 1
    seg.s = 1
    seg.l = 1 if code else 0
    seg.g = 1
    seg.avl = 0
    seg.unusable = 0


def enter_user_mode(
    kvm: Kvm,
    vcpu: Vcpu,
    rip: int,
    regs: dict[str, int] | None = None,
    cpuid: Any = None,
    *,
    keep_cpuid: bool = False,
) -> None:
    """Put ``vcpu`` in 64-bit mode at CPL3 at ``rip`` with ``regs`` (rdi, rsi, r8, ...)."""
    if not keep_cpuid:  # KVM refuses a new CPUID once the vCPU has run (firmware handover)
        vcpu.set_cpuid(cpuid if cpuid is not None else kvm.supported_cpuid())
    sregs = vcpu.get_sregs()
    _segment(sregs.cs, SEL_USER_CODE, code=True, dpl=3)
    for seg in (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss):
        _segment(seg, SEL_USER_DATA, code=False, dpl=3)
    sregs.tr.base = TSS
    sregs.tr.limit = TSS_LIMIT
    sregs.tr.selector = SEL_TSS
    sregs.tr.type = 0xB
    sregs.tr.present = 1
    sregs.tr.dpl = 0
    sregs.tr.s = 0
    sregs.tr.l = 0
    sregs.tr.db = 0
    sregs.tr.g = 0
    sregs.tr.unusable = 0
    sregs.gdt.base = GDT
    sregs.gdt.limit = 7 * 8 - 1
    sregs.idt.base = 0
    sregs.idt.limit = 0
    sregs.cr0 = 0x80050033  # PG | AM | WP | NE | ET | MP | PE
    sregs.cr3 = PML4
    sregs.cr4 = 0x20  # PAE
    sregs.efer = 0x500  # LME | LMA
    vcpu.set_sregs(sregs)
    r = vcpu.get_regs()
    for name, value in (regs or {}).items():
        setattr(r, name, value)
    r.rip = rip
    r.rflags = 0x2
    if not (regs and "rsp" in regs):
        r.rsp = STACKS + 0x1000 * (vcpu.index + 1) - 16
    vcpu.set_regs(r)
