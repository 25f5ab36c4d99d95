"""/dev/kvm, VMs and vCPUs through cffi in ABI mode.

Every object owns its file descriptor (and a vCPU its ``kvm_run`` mapping) and
releases it in ``close()`` or at the end of a ``with`` block, never through the
garbage collector.  Every failing ioctl raises :class:`KvmError` (memslot calls:
:class:`MemslotError`) with errno, the ioctl name and its arguments.
"""

from __future__ import annotations

import errno as _errno
import os
from types import TracebackType
from typing import Any, Self

from flatview.hostmem import PAGE_SIZE
from kvm_backend import abi
from kvm_backend.abi import ffi, libc
from kvm_backend.errors import KvmError, KvmUnavailable, MemslotError
from kvm_backend.memslot import Memslot

KVM_DEVICE = "/dev/kvm"


def _ioctl(fd: int, request: int, arg: Any, name: str, **args: Any) -> int:
    """Issue an ioctl, retrying EINTR (never used for KVM_RUN); raise KvmError."""
    while True:
        rc = int(libc.ioctl(fd, request, arg))
        if rc >= 0:
            return rc
        err = ffi.errno
        if err != _errno.EINTR:
            raise KvmError(name, err, **args)


def _ulong(n: int) -> Any:
    return ffi.cast("unsigned long", n)


def kvm_unavailable_reason(path: str = KVM_DEVICE) -> str | None:
    """None if ``path`` opens read-write and answers the API version; else why not."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return f"cannot open {path}: {e.strerror}"
    try:
        version = int(libc.ioctl(fd, abi.KVM_GET_API_VERSION, _ulong(0)))
        if version != abi.KVM_API_VERSION:
            return f"{path}: KVM API version {version}, expected {abi.KVM_API_VERSION}"
    finally:
        os.close(fd)
    return None


class _Fd:
    """Owns one file descriptor."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @property
    def fd(self) -> int:
        if self._fd < 0:
            raise KvmError(f"{type(self).__name__} (closed)", _errno.EBADF)
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Kvm(_Fd):
    """An open /dev/kvm."""

    def __init__(self, path: str = KVM_DEVICE) -> None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as e:
            raise KvmUnavailable(f"cannot open {path}: {e.strerror}") from e
        super().__init__(fd)
        self.api_version = _ioctl(fd, abi.KVM_GET_API_VERSION, _ulong(0), "KVM_GET_API_VERSION")
        if self.api_version != abi.KVM_API_VERSION:
            self.close()
            raise KvmUnavailable(f"{path}: KVM API version {self.api_version}, expected 12")
        self.vcpu_mmap_size = _ioctl(
            fd, abi.KVM_GET_VCPU_MMAP_SIZE, _ulong(0), "KVM_GET_VCPU_MMAP_SIZE"
        )

    def check_extension(self, cap: int) -> int:
        return _ioctl(self.fd, abi.KVM_CHECK_EXTENSION, _ulong(cap), "KVM_CHECK_EXTENSION", cap=cap)

    def supported_cpuid(self) -> Any:
        """KVM_GET_SUPPORTED_CPUID as a ``struct kvm_cpuid2 *`` (owned by Python)."""
        n = 64
        while True:
            cpuid = ffi.new("struct kvm_cpuid2 *", {"nent": n, "entries": n})
            rc = int(libc.ioctl(self.fd, abi.KVM_GET_SUPPORTED_CPUID, cpuid))
            if rc >= 0:
                return cpuid
            err = ffi.errno
            if err == _errno.E2BIG and n < 4096:
                n *= 2
                continue
            if err != _errno.EINTR:
                raise KvmError("KVM_GET_SUPPORTED_CPUID", err, nent=n)

    def create_vm(self, **options: Any) -> Vm:
        return Vm(self, **options)


class Vm(_Fd):
    """A KVM virtual machine.

    ``exit_on_emulation_failure`` enables KVM_CAP_EXIT_ON_EMULATION_FAILURE (a
    failed fetch exits at any CPL instead of injecting #UD); ``manual_dirty_protect``
    enables KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 when the kernel offers it.
    ``slot_zap_all=False`` disables KVM_X86_QUIRK_SLOT_ZAP_ALL where the kernel
    offers it (6.12+): then deleting or moving a slot zaps only that slot's
    mappings, instead of every mapping of the VM — without it, any delete makes
    every vCPU re-fault all the memory it touches, whatever the plan kept mapped
    (``slot_zap_all`` says which is in force).
    """

    def __init__(
        self,
        kvm: Kvm,
        *,
        exit_on_emulation_failure: bool = True,
        manual_dirty_protect: bool = False,
        use_region2: bool | None = None,
        slot_zap_all: bool = True,
    ) -> None:
        fd = _ioctl(kvm.fd, abi.KVM_CREATE_VM, _ulong(0), "KVM_CREATE_VM")
        super().__init__(fd)
        self.kvm = kvm
        self._slots: dict[int, Memslot] = {}
        self._nr_memslots = self.check_extension(abi.KVM_CAP_NR_MEMSLOTS) or 32
        self._nr_as = max(1, self.check_extension(abi.KVM_CAP_MULTI_ADDRESS_SPACE))
        self._readonly_mem = bool(self.check_extension(abi.KVM_CAP_READONLY_MEM))
        has_v2 = bool(self.check_extension(abi.KVM_CAP_USER_MEMORY2))
        self.use_region2 = has_v2 if use_region2 is None else (use_region2 and has_v2)
        self.manual_dirty_protect = False
        self.exit_on_emulation_failure = False
        self.slot_zap_all = True
        try:
            if not slot_zap_all:
                quirks = self.check_extension(abi.KVM_CAP_DISABLE_QUIRKS2)
                if quirks & abi.KVM_X86_QUIRK_SLOT_ZAP_ALL:
                    self.enable_cap(abi.KVM_CAP_DISABLE_QUIRKS2, abi.KVM_X86_QUIRK_SLOT_ZAP_ALL)
                    self.slot_zap_all = False
            if exit_on_emulation_failure and self.check_extension(
                abi.KVM_CAP_EXIT_ON_EMULATION_FAILURE
            ):
                self.enable_cap(abi.KVM_CAP_EXIT_ON_EMULATION_FAILURE, 1)
                self.exit_on_emulation_failure = True
            if manual_dirty_protect:
                supported = self.check_extension(abi.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)
                if supported & abi.KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE:
                    self.enable_cap(
                        abi.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
                        abi.KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
                    )
                    self.manual_dirty_protect = True
        except BaseException:
            self.close()
            raise

    # -- capabilities -------------------------------------------------------------------
    @property
    def nr_memslots(self) -> int:
        return self._nr_memslots

    @property
    def nr_address_spaces(self) -> int:
        return self._nr_as

    @property
    def readonly_mem(self) -> bool:
        return self._readonly_mem

    def check_extension(self, cap: int) -> int:
        return _ioctl(self.fd, abi.KVM_CHECK_EXTENSION, _ulong(cap), "KVM_CHECK_EXTENSION", cap=cap)

    def enable_cap(self, cap: int, *args: int, flags: int = 0) -> None:
        ec = ffi.new("struct kvm_enable_cap *")
        ec.cap = cap
        ec.flags = flags
        for i, a in enumerate(args):
            ec.args[i] = a
        _ioctl(self.fd, abi.KVM_ENABLE_CAP, ec, "KVM_ENABLE_CAP", cap=cap, args=list(args))

    # -- in-kernel devices --------------------------------------------------------------
    def create_irqchip(self) -> None:
        """The in-kernel PIC, IOAPIC and (per vCPU) LAPIC (before creating vCPUs)."""
        _ioctl(self.fd, abi.KVM_CREATE_IRQCHIP, _ulong(0), "KVM_CREATE_IRQCHIP")

    def create_pit(self, reinject: bool = False) -> None:
        """The in-kernel PIT (ports 0x40-0x43 and the speaker port 0x61), after the
        irqchip.  ``reinject=False``: ticks a vCPU missed are not delivered later (a
        firmware's timeouts would otherwise run many times too fast after a stall)."""
        _ioctl(self.fd, abi.KVM_CREATE_PIT2, ffi.new("struct kvm_pit_config *"), "KVM_CREATE_PIT2")
        control = ffi.new("struct kvm_reinject_control *", {"pit_reinject": int(reinject)})
        _ioctl(self.fd, abi.KVM_REINJECT_CONTROL, control, "KVM_REINJECT_CONTROL")

    # -- memslots -------------------------------------------------------------------------
    def slots(self) -> dict[int, Memslot]:
        return dict(self._slots)

    def set_user_memory_region(self, slot: int, flags: int, gpa: int, size: int, hva: int) -> None:
        """Create, delete (``size == 0``), move or change flags of one slot."""
        name = "KVM_SET_USER_MEMORY_REGION2" if self.use_region2 else "KVM_SET_USER_MEMORY_REGION"
        if self.use_region2:
            region = ffi.new("struct kvm_userspace_memory_region2 *")
            request = abi.KVM_SET_USER_MEMORY_REGION2
        else:
            region = ffi.new("struct kvm_userspace_memory_region *")
            request = abi.KVM_SET_USER_MEMORY_REGION
        try:
            region.slot = slot
            region.flags = flags
            region.guest_phys_addr = gpa
            region.memory_size = size
            region.userspace_addr = hva
        except OverflowError:
            raise MemslotError(
                name, _errno.EINVAL, slot=slot, gpa=gpa, size=size, flags=flags, hva=hva
            ) from None
        rc = int(libc.ioctl(self.fd, request, region))
        if rc < 0:
            raise MemslotError(name, ffi.errno, slot=slot, gpa=gpa, size=size, flags=flags, hva=hva)
        if size == 0:
            self._slots.pop(slot, None)
        else:
            self._slots[slot] = Memslot(slot, flags, gpa, size, hva)

    @property
    def timeline(self) -> None:
        """Real KVM keeps no history of the slot table."""
        return None

    def get_dirty_log(self, slot: int) -> bytes:
        ms = self._slots.get(slot)
        pages = (ms.size // PAGE_SIZE) if ms is not None else 0
        nbytes = max(8, (pages + 63) // 64 * 8)
        bitmap = ffi.new("unsigned char[]", nbytes)
        log = ffi.new("struct kvm_dirty_log *")
        log.slot = slot
        log.dirty_bitmap = bitmap
        _ioctl(self.fd, abi.KVM_GET_DIRTY_LOG, log, "KVM_GET_DIRTY_LOG", slot=slot)
        return bytes(ffi.buffer(bitmap, nbytes))

    def clear_dirty_log(self, slot: int, first_page: int, num_pages: int, bitmap: bytes) -> None:
        """KVM_CLEAR_DIRTY_LOG (needs manual protect): clear and re-protect set bits."""
        buf = ffi.new("unsigned char[]", bytes(bitmap) or b"\0")
        clr = ffi.new("struct kvm_clear_dirty_log *")
        clr.slot = slot
        clr.first_page = first_page
        clr.num_pages = num_pages
        clr.dirty_bitmap = buf
        _ioctl(
            self.fd,
            abi.KVM_CLEAR_DIRTY_LOG,
            clr,
            "KVM_CLEAR_DIRTY_LOG",
            slot=slot,
            first_page=first_page,
            num_pages=num_pages,
        )

    def set_nr_mmu_pages(self, n: int) -> None:
        _ioctl(self.fd, abi.KVM_SET_NR_MMU_PAGES, _ulong(n), "KVM_SET_NR_MMU_PAGES", pages=n)

    # -- vCPUs ----------------------------------------------------------------------------
    def create_vcpu(self, index: int) -> Vcpu:
        return Vcpu(self, index)


class Vcpu(_Fd):
    """A vCPU with its ``kvm_run`` page mapped (``self.run``, a ``struct kvm_run *``)."""

    def __init__(self, vm: Vm, index: int) -> None:
        fd = _ioctl(vm.fd, abi.KVM_CREATE_VCPU, _ulong(index), "KVM_CREATE_VCPU", vcpu=index)
        super().__init__(fd)
        self.vm = vm
        self.index = index
        self._map_size = vm.kvm.vcpu_mmap_size
        ptr = libc.mmap(
            ffi.NULL, self._map_size, abi.PROT_READ | abi.PROT_WRITE, abi.MAP_SHARED, fd, 0
        )
        if int(ffi.cast("uintptr_t", ptr)) == abi.MAP_FAILED:
            err = ffi.errno
            super().close()
            raise KvmError("mmap(kvm_run)", err, vcpu=index)
        self._map: Any = ptr
        self.run: Any = ffi.cast("struct kvm_run *", ptr)
        self.run_bytes: Any = ffi.cast("unsigned char *", ptr)

    def close(self) -> None:
        if self._map is not None:
            libc.munmap(self._map, self._map_size)
            self._map = None
            self.run = None
        super().close()

    def run_once(self) -> int:
        """One KVM_RUN through cffi (GIL released).  Returns 0 or the errno; never
        retries, so a kick (EINTR) is always seen by the caller."""
        rc = int(libc.ioctl(self.fd, abi.KVM_RUN, _ulong(0)))
        return 0 if rc >= 0 else int(ffi.errno)

    def get_regs(self) -> Any:
        regs = ffi.new("struct kvm_regs *")
        _ioctl(self.fd, abi.KVM_GET_REGS, regs, "KVM_GET_REGS", vcpu=self.index)
        return regs

    def set_regs(self, regs: Any) -> None:
        _ioctl(self.fd, abi.KVM_SET_REGS, regs, "KVM_SET_REGS", vcpu=self.index)

    def get_sregs(self) -> Any:
        sregs = ffi.new("struct kvm_sregs *")
        _ioctl(self.fd, abi.KVM_GET_SREGS, sregs, "KVM_GET_SREGS", vcpu=self.index)
        return sregs

    def set_sregs(self, sregs: Any) -> None:
        _ioctl(self.fd, abi.KVM_SET_SREGS, sregs, "KVM_SET_SREGS", vcpu=self.index)

    def set_runnable(self) -> None:
        """KVM_SET_MP_STATE runnable: a vCPU the in-kernel LAPIC holds halted (or
        waiting for a SIPI) runs from its registers at the next KVM_RUN."""
        self.set_mp_state(abi.KVM_MP_STATE_RUNNABLE)

    def set_mp_state(self, mp_state: int) -> None:
        """KVM_SET_MP_STATE (with the in-kernel irqchip): ``KVM_MP_STATE_RUNNABLE``, or
        ``KVM_MP_STATE_UNINITIALIZED`` for an AP that waits for INIT and SIPI."""
        state = ffi.new("struct kvm_mp_state *", {"mp_state": mp_state})
        _ioctl(self.fd, abi.KVM_SET_MP_STATE, state, "KVM_SET_MP_STATE", vcpu=self.index)

    def set_msrs(self, msrs: dict[int, int]) -> None:
        """KVM_SET_MSRS: every MSR in ``msrs`` (index -> value) or a KvmError."""
        buf = ffi.new("struct kvm_msrs *", {"nmsrs": len(msrs), "entries": len(msrs)})
        for i, (index, value) in enumerate(msrs.items()):
            buf.entries[i].index = index
            buf.entries[i].data = value
        done = _ioctl(self.fd, abi.KVM_SET_MSRS, buf, "KVM_SET_MSRS", vcpu=self.index)
        if done != len(msrs):
            raise KvmError("KVM_SET_MSRS", _errno.EINVAL, vcpu=self.index, set=done)

    def set_cpuid(self, cpuid: Any) -> None:
        _ioctl(self.fd, abi.KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2", vcpu=self.index)

    def translate(self, linear: int) -> int | None:
        """Guest-linear to guest-physical (None when not mapped)."""
        tr = ffi.new("struct kvm_translation *")
        tr.linear_address = linear
        _ioctl(self.fd, abi.KVM_TRANSLATE, tr, "KVM_TRANSLATE", vcpu=self.index, addr=linear)
        return int(tr.physical_address) if tr.valid else None
