"""VcpuRunner: pause_all from any thread (a vCPU's own exit handler included),
nesting, latency, and a clean shutdown."""

from __future__ import annotations

import signal
import struct
import threading
import time

import pytest

from flatview.hostmem import PAGE_SIZE as PAGE
from kvm_backend.exits import MmioExit
from kvm_backend.kvm import Kvm
from kvm_backend.runner import KICK_SIGNAL, VcpuThread
from kvm_backend.testing.sweep import SweepHarness

CYCLES = 100


@pytest.mark.kvm
def test_pause_all_from_a_vcpu_exit_handler_while_another_thread_pauses_too(
    kvm: Kvm,
) -> None:
    h = SweepHarness(kvm, 3, pages=16)
    doorbell = h.base + (h.pages - 1) * PAGE
    mapped = (h.pages - 1) * PAGE
    done_in_handler = 0

    def relayout() -> None:
        h.vm.set_user_memory_region(1, 0, 0, 0, 0)
        h.vm.set_user_memory_region(1, 0, h.base, mapped, h.data.host_addr)

    def hook(vcpu: VcpuThread, exit: MmioExit) -> bytes | None:
        nonlocal done_in_handler
        if not doorbell <= exit.addr < doorbell + PAGE:
            return None
        if vcpu.index == 0 and done_in_handler < CYCLES:
            h.runner.pause_all()
            relayout()
            h.runner.resume_all()
            done_in_handler += 1
        if exit.is_write:
            return None
        return struct.pack("<Q", doorbell)[: exit.length]

    try:
        h.mmio_hook = hook
        h.vm.set_user_memory_region(1, 0, h.base, mapped, h.data.host_addr)
        h.start()
        for _ in range(CYCLES):
            with h.runner.paused_vcpus():
                relayout()
        deadline = time.monotonic() + 20
        while done_in_handler < CYCLES and time.monotonic() < deadline:
            time.sleep(0.005)
        r = h.finish()
    finally:
        h.close()
    assert done_in_handler == CYCLES
    assert (r.mmio, r.mismatch, r.stops, r.lost_writes) == (0, 0, (), 0)
    assert h.runner.pause_count >= 2 * CYCLES


@pytest.mark.kvm
def test_pause_nests_and_latency_is_recorded(kvm: Kvm) -> None:
    with SweepHarness(kvm, 2, pages=8) as h:
        h.map_data()
        h.start()
        assert h.wait_sweeps(5)
        h.runner.pause_all()
        h.runner.pause_all()
        h.runner.resume_all()
        frozen = h.sweeps()
        time.sleep(0.05)
        assert h.sweeps() == frozen, "a vCPU ran while paused"
        h.runner.resume_all()
        assert h.wait_sweeps(5)
        r = h.finish()
    assert r.faults == 0
    assert h.runner.pause_count == 1 and len(h.runner.pause_latencies_ns) == 1
    assert 0 < h.runner.pause_latencies_ns[0] < 1_000_000_000


@pytest.mark.kvm
def test_shutdown_leaves_no_thread_and_restores_the_signal_handler(kvm: Kvm) -> None:
    before_handler = signal.getsignal(KICK_SIGNAL)
    before_threads = set(threading.enumerate())
    with SweepHarness(kvm, 4, pages=8) as h:
        h.map_data()
        h.start()
        assert h.wait_sweeps(2)
        assert signal.getsignal(KICK_SIGNAL) is not before_handler
        h.runner.stop()  # vCPUs are still looping: stop must kick them out
        assert not any(t.thread.is_alive() for t in h.runner.threads)
    assert set(threading.enumerate()) == before_threads
    assert signal.getsignal(KICK_SIGNAL) == before_handler
