"""vCPU kick latency and memslot ioctl costs on real KVM.

* ``pause``: pause_all() -> every vCPU parked outside KVM_RUN, for N = 1..32 vCPUs
  running the CPL3 sweep guest (median, p99);
* ``ioctl``: KVM_SET_USER_MEMORY_REGION(2) on a 64 MiB slot with no vCPU running:
  create, delete, move, flags-only (median, p99 of ``repeats``).
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.common import emit, summary_us
from flatview.hostmem import RamBlock
from kvm_backend.abi import KVM_MEM_LOG_DIRTY_PAGES
from kvm_backend.kvm import Kvm, kvm_unavailable_reason
from kvm_backend.testing.sweep import SweepHarness

SLOT_SIZE = 64 << 20


def pause_latency(kvm: Kvm, nvcpus: int, cycles: int) -> dict[str, Any]:
    with SweepHarness(kvm, nvcpus, pages=16) as h:
        h.map_data()
        h.start()
        h.wait_sweeps(2)
        for _ in range(cycles):
            h.runner.pause_all()
            h.runner.resume_all()
            time.sleep(0.0005)
        r = h.finish()
        out = summary_us(h.runner.pause_latencies_ns)
        out["faults"] = r.faults
        return out


def ioctl_costs(kvm: Kvm, repeats: int) -> dict[str, Any]:
    block = RamBlock("bench", SLOT_SIZE)
    samples: dict[str, list[int]] = {"create": [], "delete": [], "move": [], "flags": []}
    gpa, moved = 1 << 32, (1 << 32) + SLOT_SIZE
    try:
        with kvm.create_vm() as vm:

            def timed(kind: str, *args: int) -> None:
                t0 = time.perf_counter_ns()
                vm.set_user_memory_region(*args)
                samples[kind].append(time.perf_counter_ns() - t0)

            for _ in range(repeats):
                timed("create", 1, 0, gpa, SLOT_SIZE, block.host_addr)
                timed("flags", 1, KVM_MEM_LOG_DIRTY_PAGES, gpa, SLOT_SIZE, block.host_addr)
                timed("flags", 1, 0, gpa, SLOT_SIZE, block.host_addr)
                timed("move", 1, 0, moved, SLOT_SIZE, block.host_addr)
                timed("delete", 1, 0, 0, 0, 0)
    finally:
        block.close()
    return {k: summary_us(v) for k, v in samples.items()}


def main(smoke: bool = False) -> dict[str, Any]:
    counts = (1, 2, 4) if smoke else (1, 2, 4, 8, 16, 32)
    cycles = 20 if smoke else 200
    repeats = 5 if smoke else 50
    params = {
        "vcpus": list(counts),
        "cycles": cycles,
        "ioctl_repeats": repeats,
        "slot_size": SLOT_SIZE,
    }
    reason = kvm_unavailable_reason()
    if reason is not None:
        return emit("kick", params, {"skipped": reason})
    with Kvm() as kvm:
        pause = {str(n): pause_latency(kvm, n, cycles) for n in counts}
        ioctl = ioctl_costs(kvm, repeats)
    return emit("kick", params, {"pause_all": pause, "ioctl": ioctl})
