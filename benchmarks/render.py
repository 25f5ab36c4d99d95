"""Render and commit cost against topology size.

For 100, 1 000 and 10 000 regions: the time of a full render, and of a commit that
toggles one region (with one listener registered), medians over repeats.
"""

from __future__ import annotations

import random
from functools import partial
from typing import Any

from benchmarks.common import emit, summary_us, time_ns
from flatview import (
    AddressSpace,
    MemoryListener,
    MemoryRegion,
    MemoryRegionSection,
    MemorySystem,
    render,
)


class _Counting(MemoryListener):
    def __init__(self) -> None:
        self.calls = 0

    def region_add(self, section: MemoryRegionSection) -> None:
        self.calls += 1

    def region_del(self, section: MemoryRegionSection) -> None:
        self.calls += 1


def build(n: int, seed: int = 1) -> tuple[MemorySystem, MemoryRegion, list[MemoryRegion]]:
    """``n`` regions: containers of 16 children each; RAM leaves, some aliases, some
    overlapping at a higher priority (the shape of a large board)."""
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
                if leaves and rng.random() < 0.2:
                    target = rng.choice(leaves)
                    mr = s.alias(f"a{made}", target, 0, min(0x1000, target.size))
                else:
                    mr = s.ram(f"r{made}", 0x80000)
                    leaves.append(mr)
                box.add_subregion(i * 0x100000 + rng.choice((0, 0x40000)), mr, rng.choice((0, 1)))
                made += 1
            addr += 16 * 0x100000
    return s, root, leaves


def run(sizes: tuple[int, ...] = (100, 1000, 10000), repeats: int = 20) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for n in sizes:
        _s, root, leaves = build(n)
        space = AddressSpace(root, "memory")
        listener = _Counting()
        space.add_listener(listener)
        renders = [time_ns(partial(render, root)) for _ in range(repeats)]
        victim = leaves[len(leaves) // 2]
        toggles = []
        for _ in range(repeats):
            toggles.append(time_ns(partial(victim.set_enabled, False)))
            toggles.append(time_ns(partial(victim.set_enabled, True)))
        results[str(n)] = {
            "ranges": len(space.flatview),
            "render": summary_us(renders),
            "toggle_commit": summary_us(toggles),
        }
        for mr in leaves:
            mr.close()
    return results


def main(smoke: bool = False) -> dict[str, Any]:
    sizes = (100, 1000) if smoke else (100, 1000, 10000)
    repeats = 3 if smoke else 20
    results = run(sizes, repeats)
    big = results[str(sizes[-1])]
    small = results[str(sizes[0])]
    results["toggle_ratio_largest_to_smallest"] = round(
        big["toggle_commit"]["median_us"] / small["toggle_commit"]["median_us"], 2
    )
    return emit("render", {"sizes": list(sizes), "repeats": repeats}, results)
