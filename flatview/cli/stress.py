"""``flatview stress``: the race harness on real KVM, summarised."""

from __future__ import annotations

from typing import Any

from flatview.errors import InputError
from kvm_backend.kvm import Kvm, kvm_unavailable_reason
from listeners.kvm_listener import Mode
from listeners.testing.reshape import run_reshape


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def stress(vcpus: int, transactions: int, mode: Mode, seed: int) -> dict[str, Any]:
    reason = kvm_unavailable_reason()
    if reason is not None:
        raise InputError("stress", 0, f"needs /dev/kvm: {reason}")
    if vcpus < 1 or transactions < 1:
        raise InputError("stress", 0, "--vcpus and --transactions must be at least 1")
    with Kvm() as kvm:
        run = run_reshape(kvm, vcpus, mode, transactions, seed)
    reports, r = run.reports, run.result
    lat = [x.duration_ns / 1000 for x in reports]
    return {
        "faults": r.faults,
        "lost_writes": r.lost_writes,
        "commits": len(reports),
        "pauses": sum(x.paused for x in reports),
        "latency_us": {"p50": round(_pct(lat, 50), 1), "p99": round(_pct(lat, 99), 1)},
    }
