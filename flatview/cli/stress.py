"""``flatview stress``: the race harness on real KVM, summarised."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from flatview.errors import FlatviewError
from kvm_backend.kvm import Kvm, kvm_unavailable_reason
from listeners.kvm_listener import Mode
from listeners.testing.reshape import run_reshape


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def _progress(total: int) -> Callable[[int], None]:
    """A progress line on the terminal, redrawn every 1 % (or every transaction)."""
    step = max(1, total // 100)

    def tick(i: int) -> None:
        if (i + 1) % step == 0 or i + 1 == total:
            sys.stderr.write(f"\r  {i + 1}/{total} transactions")
            sys.stderr.flush()

    return tick


def stress(vcpus: int, transactions: int, mode: Mode, seed: int) -> dict[str, Any]:
    """Run ``transactions`` reshaping transactions under ``vcpus`` sweeping vCPUs;
    ``commits`` counts those that reached KVM (a transaction may change nothing)."""
    reason = kvm_unavailable_reason()
    if reason is not None:
        raise FlatviewError(f"needs /dev/kvm: {reason}")
    if vcpus < 1 or transactions < 1:
        raise FlatviewError("--vcpus and --transactions must be at least 1")
    progress = _progress(transactions) if sys.stderr.isatty() else None
    with Kvm() as kvm:
        run = run_reshape(kvm, vcpus, mode, transactions, seed, on_commit=progress)
    if progress is not None:
        sys.stderr.write("\r\x1b[K")
    reports, r = run.reports, run.result
    lat = [x.duration_ns / 1000 for x in reports]
    return {
        "mode": mode,
        "faults": r.faults,
        "lost_writes": r.lost_writes,
        "transactions": transactions,
        "commits": len(reports),
        "safe": mode != "naive",
        "pauses": sum(x.paused for x in reports),
        "latency_us": {"p50": round(_pct(lat, 50), 1), "p99": round(_pct(lat, 99), 1)},
    }
