"""``flatview diff`` and ``flatview replay`` of two large ``info mtree -f`` dumps.

Two synthetic dumps of N ranges each (a RAM block cut into N pieces alternating
RAM and MMIO, every fourth piece changed between the two), diffed and replayed
through the CLI in a fresh interpreter each; wall time and peak resident memory.
Target (issue 11): N = 8 000 in under 2 s and under 100 MB.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import emit

PIECE = 0x1000


def dump(n: int, changed: bool) -> str:
    lines = ["FlatView #0", ' AS "memory", root: system', " Root memory region: system"]
    for i in range(n):
        start, end = i * PIECE, (i + 1) * PIECE - 1
        kind = "ram" if i % 2 == 0 else "i/o"
        if changed and i % 4 == 0:
            kind = "rom"
        name = "pc.ram" if kind != "i/o" else f"dev{i}"
        off = f" @{start:016x}" if kind != "i/o" and start else ""
        lines.append(f"  {start:016x}-{end:016x} (prio 0, {kind}): {name}{off}")
    return "\n".join(lines) + "\n"


def run_cli(args: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one ``flatview`` command in a fresh interpreter."""
    code = (
        "import resource, sys\n"
        "from flatview.cli import main\n"
        "sys.stdout = open('/dev/null', 'w')\n"
        f"rc = main({args!r})\n"
        "sys.stderr.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
        "raise SystemExit(rc)\n"
    )
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False
    )
    elapsed = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"flatview {' '.join(args)} failed: {r.stderr[-500:]}")
    return elapsed, int(r.stderr.strip().splitlines()[-1]) / 1024


def main(smoke: bool = False) -> dict[str, Any]:
    sizes = [500, 2000] if smoke else [2000, 8000, 20000]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for n in sizes:
            a, b = Path(d, f"a{n}.mtree"), Path(d, f"b{n}.mtree")
            a.write_text(dump(n, False))
            b.write_text(dump(n, True))
            diff_s, diff_mb = run_cli(["diff", str(a), str(b), "--json"])
            replay_s, replay_mb = run_cli(["replay", str(a), str(b), "--json"])
            rows.append(
                {
                    "ranges": n,
                    "diff_s": round(diff_s, 2),
                    "diff_peak_mb": round(diff_mb, 1),
                    "replay_s": round(replay_s, 2),
                    "replay_peak_mb": round(replay_mb, 1),
                }
            )
    at_8000 = next((r for r in rows if r["ranges"] == 8000), None)
    targets = (
        {
            "diff_8000_under_2s": at_8000["diff_s"] < 2,
            "diff_8000_under_100mb": at_8000["diff_peak_mb"] < 100,
        }
        if at_8000
        else {}
    )
    return emit("dump_diff", {"sizes": sizes}, {"rows": rows, "targets": targets})
