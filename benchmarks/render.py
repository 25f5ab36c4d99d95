"""Render and commit cost against topology size, incremental against full.

For 100 .. 100 000 regions: the time of a full render, and of a commit that toggles
one region, side by side in one run with the system's incremental commits on
(damaged windows only) and off (QEMU-style full re-render and full diff): once with
one plain listener, once with a KVM listener on the simulated backend (render, diff,
callbacks and the KVM plan).  Medians over repeats.
"""

from __future__ import annotations

import random
from functools import partial
from typing import Any

from benchmarks.common import emit, summary_us, time_ns
from flatview import (
    AddressSpace,
    ListenerBase,
    MemoryRegion,
    MemoryRegionSection,
    MemorySystem,
    render,
)


class _Counting(ListenerBase):
    def __init__(self) -> None:
        self.calls = 0

    def region_add(self, section: MemoryRegionSection) -> None:
        self.calls += 1

    def region_del(self, section: MemoryRegionSection) -> None:
        self.calls += 1


def build(n: int, seed: int = 1) -> tuple[MemorySystem, MemoryRegion, list[MemoryRegion]]:
    """``n`` regions: containers of 16 children each; MMIO and RAM leaves (4:1), some
    aliases of RAM (1 in 10), some overlapping at a higher priority (the shape of a
    large board; at 100 000 regions its RAM still fits KVM's 32 764 slots)."""
    rng = random.Random(seed)
    s = MemorySystem()
    root = s.container("root", 2**64)
    leaves: list[MemoryRegion] = []
    made = 1
    addr = 0
    with s.transaction():
        while made < n:
            box = s.container(f"box{made}", 16 * 0x100000)
            root.add_subregion(addr, box)
            made += 1
            for i in range(min(16, n - made)):
                if leaves and rng.random() < 0.1:
                    target = rng.choice(leaves)
                    mr = s.alias(f"a{made}", target, 0, min(0x1000, target.size))
                elif rng.random() < 0.2:
                    mr = s.ram(f"r{made}", 0x80000)
                    leaves.append(mr)
                else:  # most of a large board is device MMIO (BARs)
                    mr = s.mmio(f"m{made}", 0x80000)
                box.add_subregion(i * 0x100000 + rng.choice((0, 0x40000)), mr, rng.choice((0, 1)))
                made += 1
            addr += 16 * 0x100000
    return s, root, leaves


def _toggles(victim: MemoryRegion, repeats: int) -> list[int]:
    out = []
    for _ in range(repeats):
        out.append(time_ns(partial(victim.set_enabled, False)))
        out.append(time_ns(partial(victim.set_enabled, True)))
    return out


def run(sizes: tuple[int, ...] = (100, 1000, 10000), repeats: int = 20) -> dict[str, Any]:
    from kvm_backend import SimVm
    from listeners import KvmMemoryListener

    results: dict[str, Any] = {}
    for n in sizes:
        s, root, leaves = build(n)
        space = AddressSpace(root, "memory")
        listener = _Counting()
        space.add_listener(listener)
        reps = max(3, repeats * 1000 // max(n, 1000))
        renders = [time_ns(partial(render, root)) for _ in range(min(reps, 5))]
        victim = leaves[len(leaves) // 2]
        row: dict[str, Any] = {"ranges": len(space.flatview), "render": summary_us(renders)}
        for mode in ("incremental", "full"):
            s.incremental = mode == "incremental"
            row[f"toggle_commit_{mode}"] = summary_us(_toggles(victim, reps))
        kl = KvmMemoryListener(SimVm(), space)
        for mode in ("incremental", "full"):
            s.incremental = mode == "incremental"
            row[f"toggle_commit_kvm_sim_{mode}"] = summary_us(_toggles(victim, reps))
        kl.close()
        results[str(n)] = row
        for mr in leaves:
            mr.close()
    return results


def main(smoke: bool = False, plot: str | None = None) -> dict[str, Any]:
    sizes = (100, 1000) if smoke else (100, 1000, 10000, 100000)
    repeats = 3 if smoke else 20
    results = run(sizes, repeats)
    big = results[str(sizes[-1])]
    ref = results["1000"]
    for kind in ("toggle_commit_incremental", "toggle_commit_kvm_sim_incremental"):
        results[f"{kind}_ratio_{sizes[-1]}_to_1000"] = round(
            big[kind]["median_us"] / ref[kind]["median_us"], 2
        )
    if plot:
        from benchmarks.plots import plot_render

        plot_render(results, plot)
    return emit("render", {"sizes": list(sizes), "repeats": repeats}, results)
