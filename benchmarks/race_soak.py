"""A long race run: the stress harness for many transactions, with progress.

Phase 1 (sweep guest, ``vcpus`` vCPUs): ``transactions`` random reshaping commits
in each safe mode (``auto``, ``optimistic``) -> guest-visible faults and lost
writes, all must be 0; then a ``naive`` control run of the same length whose
fault count must be > 0.  Phase 2 (scribble guest, dirty logging on): pages whose
contents changed between paused snapshots must all be reported dirty -> lost
dirty pages, must be 0.
"""

from __future__ import annotations

import random
import sys
import time
from typing import Any

from benchmarks.common import emit
from flatview.hostmem import PAGE_SIZE as PAGE
from kvm_backend.kvm import Kvm, kvm_unavailable_reason
from kvm_backend.testing import guest_code as gc
from kvm_backend.testing.sweep import SweepHarness
from listeners.kvm_listener import KvmMemoryListener, Mode
from listeners.testing.reshape import Reshaper, run_reshape


def progress(label: str, done: int, total: int, t0: float) -> None:
    if sys.stderr.isatty() or done == total:
        rate = done / max(time.monotonic() - t0, 1e-9)
        end = "\n" if done == total else "\r"
        sys.stderr.write(f"  {label}: {done}/{total} commits ({rate:.0f}/s){end}")
        sys.stderr.flush()


def race(kvm: Kvm, mode: Mode, vcpus: int, transactions: int, seed: int) -> dict[str, Any]:
    t0 = time.monotonic()

    def tick(i: int) -> None:
        if i % 100 == 99 or i + 1 == transactions:
            progress(mode, i + 1, transactions, t0)

    run = run_reshape(kvm, mode=mode, nvcpus=vcpus, commits=transactions, seed=seed, on_commit=tick)
    r = run.result
    pauses = sum(x.paused for x in run.reports)
    return {
        "faults": r.faults,
        "mmio": r.mmio,
        "mismatch": r.mismatch,
        "stops": len(r.stops),
        "lost_writes": r.lost_writes,
        "guest_writes": r.guest_writes,
        "pauses": pauses,
        "slots_to_qemu_style_max": round(max(run.slot_ratios, default=0.0), 2),
        "slots_to_qemu_style_mean": round(sum(run.slot_ratios) / max(len(run.slot_ratios), 1), 2),
        "seconds": round(time.monotonic() - t0, 2),
    }


def dirty(kvm: Kvm, mode: Mode, transactions: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    h = SweepHarness(kvm, 2, direct=False, code=gc.SCRIBBLE)
    lost = changed_total = 0
    try:
        shaper = Reshaper(h, seed)
        h.data_region.log_start("migration")
        kl = KvmMemoryListener(h.vm, shaper.space, vcpus=h.runner, mode=mode)
        h.start()

        def snap() -> list[bytes]:
            return [h.data.read(p * PAGE, PAGE) for p in range(h.pages)]

        with h.runner.paused_vcpus():
            kl.sync_dirty_log()
            h.take_dirty()
            before = snap()
        for _ in range(transactions):
            kind = rng.choice(("boundary", "shadow", "hi"))
            if kind == "hi":
                shaper.hi.set_enabled(not shaper.hi.enabled)
            else:
                shaper.do(kind)
            h.wait_sweeps(1, timeout=1.0)
            with h.runner.paused_vcpus():
                kl.sync_dirty_log()
                reported = set(
                    h.data_region.snapshot_and_clear_dirty(0, h.data_region.size, "migration").pages
                )
                after = snap()
            changed = {p for p in range(h.pages) if after[p] != before[p]}
            lost += len(changed - reported)
            changed_total += len(changed)
            before = after
        h.finish()
    finally:
        h.close()
    return {"changed_pages": changed_total, "lost_dirty_pages": lost}


def main(
    smoke: bool = False, transactions: int | None = None, vcpus: int | None = None
) -> dict[str, Any]:
    n = transactions or (300 if smoke else 10000)
    nv = vcpus or (2 if smoke else 8)
    params = {"transactions": n, "vcpus": nv, "seed": 1}
    reason = kvm_unavailable_reason()
    if reason is not None:
        return emit("race_soak", params, {"skipped": reason})
    results: dict[str, Any] = {}
    with Kvm() as kvm:
        for mode in ("auto", "optimistic", "naive"):
            results[mode] = race(kvm, mode, nv, n, seed=1)
        dn = max(20, n // 50)
        results["dirty"] = {m: dirty(kvm, m, dn, seed=2) for m in ("auto", "optimistic")}
    results["ok"] = (
        all(
            results[m]["faults"] == 0 and results[m]["lost_writes"] == 0
            for m in ("auto", "optimistic")
        )
        and results["naive"]["faults"] > 0
        and all(d["lost_dirty_pages"] == 0 for d in results["dirty"].values())
    )
    return emit("race_soak", params, results)
