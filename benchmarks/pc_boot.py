"""The SeaBIOS PAM sequence on the pc-like and q35-like boards: our plans next to QEMU's.

Per commit: ioctls (deletes + creates, flags, moves), remapped bytes, unchanged
bytes unmapped (from the simulated KVM's timeline), whether vCPUs must pause —
for our planner in ``auto`` mode (the cost-driven layout), in ``optimistic`` mode
(every tree cut kept, nothing unchanged ever unmapped), and the QEMU-style planner
(``qemu_like=True``: one slot per flat range, every changed slot deleted).
With /dev/kvm, the same commits are also applied to a real VM and timed.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.common import emit
from flatview.pc import PcBoard
from kvm_backend.backend import MemslotBackend
from kvm_backend.kvm import Kvm, kvm_unavailable_reason
from kvm_backend.sim import SimVm
from listeners.kvm_listener import KvmMemoryListener

QEMU10_REFERENCE = [(4, 4), (4, 1), (1, 5), (2, 2)]
"""(deletes, creates) QEMU 10 issued for these four commits (pc, 512 MiB, no VGA)."""

VARIANTS: dict[str, dict[str, Any]] = {
    "ours_auto": {"mode": "auto"},
    "ours_optimistic": {"mode": "optimistic"},
    "qemu_like": {"qemu_like": True, "tree_aware": False},
}


def run_variant(
    backend: MemslotBackend, variant: dict[str, Any], machine: str = "pc"
) -> list[dict[str, Any]]:
    board = PcBoard(ram_size=512 << 20, vga=False, machine=machine)
    kl = KvmMemoryListener(backend, board.memory, **variant)
    rows = []
    for label, addr, value in board.seabios_pam_sequence():
        timeline = backend.timeline
        t0 = timeline.now if timeline is not None else 0
        start = time.perf_counter_ns()
        board.write_config(addr, value.to_bytes(4, "little"))
        elapsed = time.perf_counter_ns() - start
        p = kl.reports[-1].plan
        row: dict[str, Any] = {
            "commit": label,
            "ioctls": p.ioctls,
            "deletes": p.count("delete"),
            "creates": p.count("create"),
            "flags": p.count("flags"),
            "moves": p.count("move"),
            "remapped_bytes": p.remapped_bytes,
            "unchanged_bytes_unmapped": p.unchanged_bytes_unmapped,
            "pause_needed": p.needs_pause,
            "classes": [c.kind for c in kl.reports[-1].summary().classes],
            "commit_us": round(elapsed / 1000, 1),
        }
        if timeline is not None:
            holes = timeline.holes(t0)
            row["timeline_unchanged_unmapped"] = sum(h.size for h in holes if h.same_mapping)
        rows.append(row)
    return rows


def main(smoke: bool = False, plot: str | None = None) -> dict[str, Any]:
    results: dict[str, Any] = {"qemu10_reference": QEMU10_REFERENCE, "sim": {}, "kvm": {}}
    for name, opts in VARIANTS.items():
        results["sim"][name] = run_variant(SimVm(), opts)
    results["q35_sim"] = {
        name: run_variant(SimVm(), opts, "q35") for name, opts in VARIANTS.items()
    }
    reason = kvm_unavailable_reason()
    if reason is None:
        with Kvm() as kvm:
            for name, opts in VARIANTS.items():
                with kvm.create_vm() as vm:
                    results["kvm"][name] = run_variant(vm, opts)
    else:
        results["kvm"] = {"skipped": reason}
    ours = results["sim"]["ours_auto"]
    qemu = results["sim"]["qemu_like"]
    results["summary"] = {
        "ioctls_ours": sum(r["ioctls"] for r in ours),
        "ioctls_qemu_like": sum(r["ioctls"] for r in qemu),
        "ioctl_ratio": round(
            sum(r["ioctls"] for r in ours) / max(1, sum(r["ioctls"] for r in qemu)), 2
        ),
        "unchanged_unmapped_ours": sum(r["unchanged_bytes_unmapped"] for r in ours),
        "unchanged_unmapped_qemu_like": sum(r["unchanged_bytes_unmapped"] for r in qemu),
        "q35_ioctls_ours": sum(r["ioctls"] for r in results["q35_sim"]["ours_auto"]),
        "q35_ioctls_qemu_like": sum(r["ioctls"] for r in results["q35_sim"]["qemu_like"]),
        "q35_unchanged_unmapped_ours": sum(
            r["unchanged_bytes_unmapped"] for r in results["q35_sim"]["ours_auto"]
        ),
        "q35_unchanged_unmapped_qemu_like": sum(
            r["unchanged_bytes_unmapped"] for r in results["q35_sim"]["qemu_like"]
        ),
    }
    doc = emit("pc_boot", {"ram": 512 << 20, "vga": False, "smoke": smoke}, results)
    if plot:
        from benchmarks.plots import plot_pc_boot

        plot_pc_boot(results, plot)
    return doc
