"""Python overhead of a commit against the time of its ioctls.

For the pc board (~60 regions; the SeaBIOS PAM writes, repeated) and for
synthetic topologies of 1 000 and 10 000 regions (one RAM region toggled), per
commit: wall time of the commit, time inside memslot ioctls, and the rest
(render + diff + plan + bookkeeping, all Python), with their ratio.
Runs on real KVM when /dev/kvm opens, else on the simulated KVM.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import emit, percentile
from benchmarks.render import build
from flatview import AddressSpace
from flatview.pc import PcBoard
from kvm_backend.backend import MemslotBackend
from kvm_backend.kvm import Kvm, kvm_unavailable_reason
from kvm_backend.sim import SimVm
from listeners.kvm_listener import KvmMemoryListener


def measure(kl: KvmMemoryListener, step: Callable[[], None], commits: int) -> dict[str, Any]:
    walls, ioctls = [], []
    for _ in range(commits):
        before = len(kl.reports)
        t0 = time.perf_counter_ns()
        step()
        wall = time.perf_counter_ns() - t0
        if len(kl.reports) == before:
            continue
        walls.append(wall / 1000)
        ioctls.append(kl.reports[-1].ioctl_ns / 1000)
    python = [w - i for w, i in zip(walls, ioctls, strict=True)]
    p50_io = percentile(ioctls, 50)
    return {
        "commits": len(walls),
        "wall_us_p50": round(percentile(walls, 50), 1),
        "ioctl_us_p50": round(p50_io, 1),
        "python_us_p50": round(percentile(python, 50), 1),
        "python_to_ioctl": round(percentile(python, 50) / p50_io, 2) if p50_io else None,
        "ioctls_per_commit_p50": percentile(
            [float(r.plan.ioctls) for r in kl.reports[-len(walls) :]], 50
        ),
    }


def pc_case(backend: MemslotBackend, commits: int) -> dict[str, Any]:
    board = PcBoard(ram_size=512 << 20, vga=True, vapic_addr=0xCA000)
    kl = KvmMemoryListener(backend, board.memory)
    seq = board.seabios_pam_sequence()
    i = 0

    def step() -> None:
        nonlocal i
        _label, addr, value = seq[i % len(seq)]
        board.write_config(addr, value.to_bytes(4, "little"))
        i += 1

    out = measure(kl, step, commits)
    out["regions"] = sum(1 for _ in board.root.walk()) + sum(1 for _ in board.pci.walk())
    return out


def synthetic_case(backend: MemslotBackend, n: int, commits: int) -> dict[str, Any]:
    _system, root, leaves = build(n)
    space = AddressSpace(root, "memory")
    kl = KvmMemoryListener(backend, space)
    victim = leaves[len(leaves) // 2]
    out = measure(kl, lambda: victim.set_enabled(not victim.enabled), commits)
    out["regions"] = n
    kl.close()
    for mr in leaves:
        mr.close()
    return out


def main(smoke: bool = False) -> dict[str, Any]:
    sizes = (1000,) if smoke else (1000, 10000)
    commits = 8 if smoke else 40
    reason = kvm_unavailable_reason()
    results: dict[str, Any] = {"backend": "kvm" if reason is None else f"sim ({reason})"}

    kvm = Kvm() if reason is None else None

    def backend_factory() -> Any:
        return kvm.create_vm() if kvm is not None else SimVm()

    try:
        with backend_factory() as vm:
            results["pc"] = pc_case(vm, commits)
        for n in sizes:
            with backend_factory() as vm:
                results[str(n)] = synthetic_case(vm, n, max(4, commits // 4))
    finally:
        if kvm is not None:
            kvm.close()
    return emit("overhead", {"sizes": ["pc", *sizes], "commits": commits}, results)
