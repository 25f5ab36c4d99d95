"""PCI enumeration as firmware does it: every config write is one commit.

N PCI-like devices, each with up to 6 BARs (MMIO, some RAM-device) as subregions
of a PCI window in system memory, and each with its own bus-master AddressSpace
whose root aliases all of system memory (so it shares system memory's FlatView).
Per device: disable decode (one commit), per BAR an all-ones sizing write (the BAR
moves to the top of the window, one commit) and the programming write (one
commit), then enable decode (one commit).  A KVM listener on the simulated backend
follows system memory.  Total commit time with incremental commits and with full
re-renders, side by side, and the peak resident memory of the run.
"""

from __future__ import annotations

import random
import resource
import time
from typing import Any

from benchmarks.common import emit
from flatview import AddressSpace, MemoryRegion, MemorySystem
from kvm_backend import SimVm
from listeners import KvmMemoryListener

PCI_BASE = 0xC000_0000
PCI_SIZE = 0x3000_0000
BAR_SIZES = (0x1000, 0x4000, 0x10000, 0x100000)


def build(n: int, seed: int) -> tuple[MemorySystem, AddressSpace, list[list[MemoryRegion]]]:
    rng = random.Random(seed)
    s = MemorySystem()
    system = s.container("system", 2**64)
    system.add_subregion(0, s.ram("pc.ram", 256 << 20))
    pci = s.container("pci", PCI_SIZE)
    system.add_subregion(PCI_BASE, pci, priority=-1)
    memory = AddressSpace(system, "memory")
    devices: list[list[MemoryRegion]] = []
    for d in range(n):
        bars = []
        for b in range(rng.randint(1, 6)):
            size = rng.choice(BAR_SIZES)
            kind = s.ram_device if rng.random() < 0.2 else s.mmio
            bar = kind(f"dev{d}.bar{b}", size)
            bar.set_enabled(False)  # decode off until the firmware programs it
            pci.add_subregion(PCI_SIZE - size, bar)  # the reset value: parked at the top
            bars.append(bar)
        devices.append(bars)
        AddressSpace(s.alias(f"dev{d}.bm", system, 0, 2**64), f"dev{d}-bus-master")
    return s, memory, devices


def enumerate_all(devices: list[list[MemoryRegion]]) -> int:
    """Program every BAR, one commit per config write; returns the number of commits."""
    commits = 0
    addr = 0
    for bars in devices:
        for bar in bars:
            bar.set_enabled(False)
        commits += 1
        for bar in bars:
            bar.set_address(PCI_SIZE - bar.size)  # all-ones: the size probe
            addr = -(-addr // bar.size) * bar.size
            bar.set_address(addr)
            addr += bar.size
            commits += 2
        for bar in bars:
            bar.set_enabled(True)
        commits += 1
    return commits


def run(n: int, incremental: bool, seed: int = 1) -> dict[str, Any]:
    s, memory, devices = build(n, seed)
    s.incremental = incremental
    kl = KvmMemoryListener(SimVm(), memory)
    spaces = s.address_spaces
    t0 = time.perf_counter()
    commits = enumerate_all(devices)
    seconds = time.perf_counter() - t0
    shared = len({id(sp.flatview) for sp in spaces}) == 1
    slots = len(kl.slots)
    kl.close()
    return {
        "devices": n,
        "bars": sum(len(b) for b in devices),
        "commits": commits,
        "seconds": round(seconds, 3),
        "ms_per_commit": round(seconds * 1000 / commits, 3),
        "one_shared_flatview": shared,
        "slots": slots,
    }


def main(smoke: bool = False) -> dict[str, Any]:
    sizes = (20, 50) if smoke else (50, 200, 500)
    rows = []
    for n in sizes:
        inc = run(n, True)
        full = run(n, False)
        rows.append(
            {
                "devices": n,
                "incremental": inc,
                "full": full,
                "speedup": round(full["seconds"] / max(inc["seconds"], 1e-9), 1),
            }
        )
    last = rows[-1]
    targets = {
        "speedup_at_largest_ge_50": last["speedup"] >= 50,
        "incremental_at_largest_le_2s": last["incremental"]["seconds"] <= 2,
        "views_shared": all(r["incremental"]["one_shared_flatview"] for r in rows),
    }
    peak_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return emit(
        "pci_enum", {"sizes": list(sizes)}, {"rows": rows, "targets": targets, "peak_mb": peak_mb}
    )
