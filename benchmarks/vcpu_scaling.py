"""Commit latency and vCPU stall against the number of running vCPUs, per mode.

For N vCPUs running the CPL3 sweep over the ranges being reshaped, each mode
commits the same seeded sequence (remapping commits: read-only overlay toggles;
non-remapping ones: boundary moves, MOVEs elsewhere, dirty-log toggles). Per mode:
commit latency p50/p99 (planning + ioctls, split by whether the commit remaps),
vCPU-visible stall (time vCPUs were held paused, or waited in a commit window),
guest-visible faults, and the latency ratio to ``naive`` at the same N.
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import emit, percentile
from kvm_backend.kvm import Kvm, kvm_unavailable_reason
from listeners.kvm_listener import MODES, Mode
from listeners.testing.reshape import run_reshape


def run_mode(kvm: Kvm, nvcpus: int, mode: Mode, commits: int, seed: int) -> dict[str, Any]:
    run = run_reshape(kvm, nvcpus, mode, commits, seed)
    reports, r = run.reports, run.result
    remap = [x.duration_ns / 1000 for x in reports if x.plan.needs_pause]
    other = [x.duration_ns / 1000 for x in reports if not x.plan.needs_pause]
    alls = [x.duration_ns / 1000 for x in reports]
    stall_us = sum(x.pause_ns for x in reports) / 1000 * nvcpus + run.window_wait_ns / 1000
    return {
        "commits": len(reports),
        "latency_us": {
            "p50": round(percentile(alls, 50), 1),
            "p99": round(percentile(alls, 99), 1),
        },
        "remapping_us": {"p50": round(percentile(remap, 50), 1), "n": len(remap)},
        "non_remapping_us": {"p50": round(percentile(other, 50), 1), "n": len(other)},
        "stall_us_total": round(stall_us, 1),
        "pauses": sum(x.paused for x in reports),
        "faults": r.faults,
        "lost_writes": r.lost_writes,
    }


def main(smoke: bool = False, plot: str | None = None) -> dict[str, Any]:
    counts = (1, 2) if smoke else (1, 2, 4, 8, 16, 32)
    commits = 20 if smoke else 200
    params = {"vcpus": list(counts), "commits": commits, "modes": list(MODES), "seed": 1}
    reason = kvm_unavailable_reason()
    if reason is not None:
        return emit("vcpu_scaling", params, {"skipped": reason})
    results: dict[str, Any] = {}
    with Kvm() as kvm:
        for n in counts:
            row = {mode: run_mode(kvm, n, mode, commits, seed=1) for mode in MODES}
            base = row["naive"]["latency_us"]["p50"] or 1.0
            for mode in MODES:
                row[mode]["p50_ratio_to_naive"] = round(row[mode]["latency_us"]["p50"] / base, 2)
            results[str(n)] = row
    doc = emit("vcpu_scaling", params, results)
    if plot:
        from benchmarks.plots import plot_scaling

        plot_scaling(results, plot)
    return doc
