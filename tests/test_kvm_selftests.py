"""The kernel's set_memory_region_test scenarios, in Python, on real KVM."""

from __future__ import annotations

import queue
import struct
import time

import pytest

from flatview.hostmem import RamBlock
from kvm_backend.exits import IoExit, MmioExit, StopExit
from kvm_backend.kvm import Kvm, Vm
from kvm_backend.runner import VcpuRunner, VcpuThread
from kvm_backend.testing import guest
from kvm_backend.testing import guest_code as gc

GPA = 0xC0000000
SIZE = 2 << 20
SLOT = 10
MMIO_VALUE = 0xBEEF


class Watcher:
    """Exit handler for the watch guest: queues every reported value and stop."""

    def __init__(self) -> None:
        self.values: queue.Queue[int | StopExit] = queue.Queue()
        self.mmio_reads = 0

    def io(self, vcpu: VcpuThread, exit: IoExit) -> bytes | None:
        if exit.port == gc.PORT_REPORT:
            self.values.put(int.from_bytes(exit.data[:4], "little"))
        return None

    def mmio(self, vcpu: VcpuThread, exit: MmioExit) -> bytes | None:
        self.mmio_reads += 1
        return None if exit.is_write else MMIO_VALUE.to_bytes(8, "little")[: exit.length]

    def stop(self, vcpu: VcpuThread, exit: StopExit) -> bool:
        self.values.put(exit)
        return False

    def next(self, timeout: float = 5.0) -> int | StopExit:
        return self.values.get(timeout=timeout)


class WatchVm:
    def __init__(self, kvm: Kvm, final: int) -> None:
        self.vm: Vm = kvm.create_vm()
        self.system = RamBlock("system", guest.SYSTEM_SIZE)
        guest.write_system_tables(self.system.buffer(), gc.WATCH)
        self.vm.set_user_memory_region(0, 0, 0, guest.SYSTEM_SIZE, self.system.host_addr)
        self.vcpu = self.vm.create_vcpu(0)
        guest.enter_user_mode(kvm, self.vcpu, guest.CODE, {"rdi": GPA, "rsi": final})
        self.watcher = Watcher()
        self.runner = VcpuRunner([self.vcpu], self.watcher)

    def close(self) -> None:
        self.runner.stop()
        self.vcpu.close()
        self.vm.close()
        self.system.close()


@pytest.mark.kvm
def test_move_never_shows_the_guest_a_stale_mapping(kvm: Kvm) -> None:
    w = WatchVm(kvm, final=1)
    block = RamBlock("moved", SIZE)
    try:
        w.vm.set_user_memory_region(SLOT, 0, GPA, SIZE, block.host_addr)
        w.runner.start()
        assert w.watcher.next() == 0
        w.vm.set_user_memory_region(SLOT, 0, GPA - 0x1000, SIZE, block.host_addr)
        block.write(0, struct.pack("<Q", 2))  # now at GPA - 4 KiB: never visible at GPA
        time.sleep(0.05)
        block.write(0, struct.pack("<Q", 1))
        w.vm.set_user_memory_region(SLOT, 0, GPA, SIZE, block.host_addr)
        seen: list[int] = []
        while not seen or seen[-1] != 1:
            v = w.watcher.next()
            assert isinstance(v, int), f"vCPU stopped: {v}"
            seen.append(v)
        assert 2 not in seen
        assert set(seen) <= {0, MMIO_VALUE, 1}
    finally:
        w.close()
        block.close()


@pytest.mark.kvm
def test_delete_and_recreate_shows_mmio_then_memory_then_mmio(kvm: Kvm) -> None:
    w = WatchVm(kvm, final=2**64 - 1)
    block = RamBlock("first", SIZE)
    fresh = RamBlock("fresh", SIZE)
    try:
        w.vm.set_user_memory_region(SLOT, 0, GPA, SIZE, block.host_addr)
        w.runner.start()
        assert w.watcher.next() == 0
        w.vm.set_user_memory_region(SLOT, 0, 0, 0, 0)
        assert w.watcher.next() == MMIO_VALUE
        w.vm.set_user_memory_region(SLOT, 0, GPA, SIZE, fresh.host_addr)
        assert w.watcher.next() == 0
        w.vm.set_user_memory_region(SLOT, 0, 0, 0, 0)
        assert w.watcher.next() == MMIO_VALUE
        assert w.watcher.mmio_reads > 0
    finally:
        w.close()
        block.close()
        fresh.close()


@pytest.mark.kvm
def test_deleting_the_code_slot_stops_the_vcpu_with_shutdown_or_internal_error(
    kvm: Kvm,
) -> None:
    w = WatchVm(kvm, final=2**64 - 1)
    block = RamBlock("data", SIZE)
    try:
        w.vm.set_user_memory_region(SLOT, 0, GPA, SIZE, block.host_addr)
        w.runner.start()
        assert w.watcher.next() == 0
        w.vm.set_user_memory_region(0, 0, 0, 0, 0)
        v = w.watcher.next()
        assert isinstance(v, StopExit), v
        assert v.reason in ("SHUTDOWN", "INTERNAL_ERROR"), v
        assert v.rip is not None and guest.CODE <= v.rip < guest.CODE + len(gc.WATCH)
        assert w.runner.wait(5)
    finally:
        w.close()
        block.close()
