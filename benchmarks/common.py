"""Shared helpers: machine facts, percentiles, JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kvm": os.access("/dev/kvm", os.R_OK | os.W_OK),
    }


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def summary_us(samples_ns: list[int]) -> dict[str, float]:
    us = [x / 1000 for x in samples_ns]
    return {
        "median_us": round(statistics.median(us), 2) if us else float("nan"),
        "p99_us": round(percentile(us, 99), 2),
        "n": len(us),
    }


def time_ns(fn: Callable[[], object]) -> int:
    t0 = time.perf_counter_ns()
    fn()
    return time.perf_counter_ns() - t0


def emit(name: str, params: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    doc = {"benchmark": name, "machine": machine(), "parameters": params, "results": results}
    print(json.dumps(doc, indent=2))
    return doc
