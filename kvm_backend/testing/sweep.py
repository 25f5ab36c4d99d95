"""The race harness: N vCPUs at CPL3 sweeping a guest range while the host reshapes it.

Each page of the watched range holds its own guest-physical address in its first
qword; every vCPU reads all pages in a loop (``guest_src/sweep.S``), counts its
writes to a counter inside the range, and reports a mismatch with port I/O.  The
harness counts every guest-visible fault:

* ``mmio``: an MMIO exit inside the watched range (the RAM was not mapped);
* ``mismatch``: the guest read a wrong value;
* ``stops``: SHUTDOWN / INTERNAL_ERROR / any exit that ended a vCPU early;
* ``lost_writes`` (after :meth:`SweepHarness.finish`): increments the guest made
  that are not in memory.

Used by the tests, ``flatview stress`` and the benchmarks.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

import attrs

from flatview.hostmem import PAGE_SIZE as PAGE
from flatview.hostmem import RamBlock
from flatview.system import MemorySystem
from kvm_backend.exits import IoExit, MmioExit, StopExit
from kvm_backend.kvm import Kvm, Vcpu
from kvm_backend.runner import VcpuRunner, VcpuThread
from kvm_backend.testing import guest
from kvm_backend.testing import guest_code as gc

MmioHook = Callable[[VcpuThread, MmioExit], "bytes | None"]


@attrs.define
class VcpuFaults:
    mmio: int = 0
    mismatch: int = 0
    stops: list[StopExit] = attrs.field(factory=list)
    guest_writes: int | None = None
    done: bool = False


@attrs.frozen
class SweepResult:
    """``faults`` = MMIO exits on the range + mismatches + early stops; lost writes
    (guest increments missing from memory, including counters an emulated
    read-modify-write reset) are counted apart."""

    faults: int
    mmio: int
    mismatch: int
    stops: tuple[StopExit, ...]
    lost_writes: int
    guest_writes: int
    sweeps: int


class _Handler:
    def __init__(self, harness: SweepHarness) -> None:
        self.h = harness

    def io(self, vcpu: VcpuThread, exit: IoExit) -> bytes | None:
        f = self.h.per_vcpu[vcpu.index]
        value = int.from_bytes(exit.data[:4], "little") if exit.data else 0
        if exit.port == gc.PORT_REPORT:
            f.mismatch += 1
        elif exit.port == gc.PORT_COUNT:
            f.guest_writes = value
        elif exit.port == gc.PORT_DONE:
            f.done = True
            vcpu.stop()
        return None if exit.is_write else bytes(exit.size * exit.count)

    def mmio(self, vcpu: VcpuThread, exit: MmioExit) -> bytes | None:
        if self.h.mmio_hook is not None:
            ret = self.h.mmio_hook(vcpu, exit)
            if ret is not None or exit.is_write:
                return ret
        if self.h.base <= exit.addr < self.h.base + self.h.pages * PAGE:
            self.h.per_vcpu[vcpu.index].mmio += 1
        return None if exit.is_write else b"\xff" * exit.length

    def stop(self, vcpu: VcpuThread, exit: StopExit) -> bool:
        self.h.per_vcpu[vcpu.index].stops.append(exit)
        return False


class SweepHarness:
    """A VM with slot 0 = system block, the watched range in ``data`` (not mapped
    until the caller maps it), and ``nvcpus`` vCPUs ready to sweep it."""

    def __init__(
        self,
        kvm: Kvm,
        nvcpus: int,
        *,
        base: int = 0x10000000,
        pages: int = 64,
        memory: MemorySystem | None = None,
        direct: bool = True,
        code: bytes = gc.SWEEP,
    ) -> None:
        """``direct``: map the system block as slot 0 here (tests of raw memslots);
        otherwise the caller maps ``system_region`` and ``data_region`` through a
        memory tree and a KVM listener.  ``code``: SWEEP, or SCRIBBLE (same registers,
        ``r8`` is then the offset each vCPU writes in every page)."""
        self.kvm = kvm
        self.vm = kvm.create_vm()
        self.base = base
        self.pages = pages
        self.memory = memory or MemorySystem()
        self.system_region = self.memory.ram("guest-system", guest.SYSTEM_SIZE)
        self.data_region = self.memory.ram("sweep-data", pages * PAGE)
        assert self.system_region.ram_block is not None
        assert self.data_region.ram_block is not None
        self.system: RamBlock = self.system_region.ram_block
        self.data: RamBlock = self.data_region.ram_block
        guest.write_system_tables(self.system.buffer(), code)
        if direct:
            self.vm.set_user_memory_region(0, 0, 0, guest.SYSTEM_SIZE, self.system.host_addr)
        for p in range(pages):
            self.data.write(p * PAGE, struct.pack("<Q", base + p * PAGE))
        self.mmio_hook: MmioHook | None = None
        self.per_vcpu = [VcpuFaults() for _ in range(nvcpus)]
        cpuid = kvm.supported_cpuid()
        self.vcpus: list[Vcpu] = []
        for i in range(nvcpus):
            v = self.vm.create_vcpu(i)
            self.vcpus.append(v)
            guest.enter_user_mode(
                kvm,
                v,
                guest.CODE,
                {
                    "rdi": base,
                    "rsi": pages,
                    "r8": (base if code == gc.SWEEP else 0) + 8 + 8 * i,
                    "r9": 0,
                    "r10": guest.STOP_FLAG,
                    "r12": guest.progress_addr(i),
                },
                cpuid,
            )
        self.runner = VcpuRunner(self.vcpus, _Handler(self))
        self._finished = False

    def map_data(self, slot: int = 1, flags: int = 0) -> None:
        self.vm.set_user_memory_region(
            slot, flags, self.base, self.pages * PAGE, self.data.host_addr
        )

    def start(self) -> None:
        self.runner.start()

    def sweeps(self) -> int:
        buf = self.system.buffer()
        return sum(
            struct.unpack_from("<Q", buf, guest.progress_addr(i))[0] for i in range(len(self.vcpus))
        )

    def take_dirty(self, client: str = "migration") -> set[int]:
        """Take and clear ``client``'s dirty pages of the data region (page indices)."""
        r = self.data_region
        return set(r.snapshot_and_clear_dirty(0, r.size, client).pages)

    def wait_sweeps(self, n: int, timeout: float = 10.0) -> bool:
        """Wait until every vCPU has completed ``n`` more sweeps."""
        buf = self.system.buffer()
        start = [
            struct.unpack_from("<Q", buf, guest.progress_addr(i))[0] for i in range(len(self.vcpus))
        ]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = [
                struct.unpack_from("<Q", buf, guest.progress_addr(i))[0]
                for i in range(len(self.vcpus))
            ]
            if all(b - a >= n for a, b in zip(start, now, strict=True)):
                return True
            if all(f.stops for f in self.per_vcpu):
                return False
            time.sleep(0.001)
        return False

    def finish(self, timeout: float = 10.0) -> SweepResult:
        """Ask the guests to stop, collect their write counts, stop the runner."""
        struct.pack_into("<Q", self.system.buffer(), guest.STOP_FLAG, 1)
        self.runner.wait(timeout)
        self.runner.stop()
        self._finished = True
        lost = 0
        writes = 0
        for i, f in enumerate(self.per_vcpu):
            if f.guest_writes is None:
                continue
            in_memory = struct.unpack_from("<Q", self.data.read(8 + 8 * i, 8))[0]
            writes += f.guest_writes
            lost += f.guest_writes - (in_memory & 0xFFFFFFFF)
        mmio = sum(f.mmio for f in self.per_vcpu)
        mismatch = sum(f.mismatch for f in self.per_vcpu)
        stops = tuple(s for f in self.per_vcpu for s in f.stops)
        return SweepResult(
            faults=mmio + mismatch + len(stops),
            mmio=mmio,
            mismatch=mismatch,
            stops=stops,
            lost_writes=lost,
            guest_writes=writes,
            sweeps=self.sweeps(),
        )

    def close(self) -> None:
        if not self._finished:
            self.runner.stop()
        for v in self.vcpus:
            v.close()
        self.vm.close()
        self.data_region.close()
        self.system_region.close()

    def __enter__(self) -> SweepHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
