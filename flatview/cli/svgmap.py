"""A picture of the guest-physical map, one column per state, read top to bottom.

Rows are the address intervals where some state's ranges or slots start or end,
in address order; the gaps between mapped parts collapse into thin rows that say
how much was skipped.  A row's height grows with the log of its size (the map is
not to scale: a 511 MiB range and a 128 KiB ROM both stay readable), and every
range carries its full name and true size.  KVM slots are drawn beside each
column with their numbers; ranges a diff changed are outlined in red.  The SVG
scales to the width of the page (viewBox); the legend lists only what occurs.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence
from pathlib import PurePath

from flatview.cli.dump import DumpRange
from listeners.planner import Slot

COLOURS = {
    "ram": "#66bb6a",
    "rom": "#64b5f6",
    "romd": "#4dd0e1",
    "ramd": "#aed581",
    "i/o": "#ffb74d",
    "container": "#bdbdbd",
}
KIND_NAMES = {
    "ram": "RAM",
    "rom": "ROM / read-only RAM",
    "romd": "ROM device (romd)",
    "ramd": "RAM device",
    "i/o": "MMIO / I/O",
    "container": "container",
}
ADDR_W = 150
SLOT_W = 62
GAP_H = 16
MIN_H = 26
MAX_H = 84
CHAR_W = 6.4
"""Width of one character of the 11 px label font, generously (for the layout)."""


def size_text(n: int) -> str:
    """A size as people write it: 4 KiB, 128 KiB, 511 MiB; ``0xfbf00000 (≈3.94 GiB)``
    when no unit divides it; 12 bytes."""
    units = (("GiB", 30), ("MiB", 20), ("KiB", 10))
    for unit, shift in units:
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    for unit, shift in units:
        if n >= 1 << shift:
            return f"{n:#x} (≈{n / (1 << shift):.2f} {unit})"
    return f"{n} byte" if n == 1 else f"{n} bytes"


def _row_height(size: int) -> float:
    return min(MAX_H, MIN_H + 3.5 * math.log2(size / 4096 + 1))


def _rows(
    states: Sequence[Sequence[DumpRange]], slots: Sequence[Sequence[Slot]]
) -> list[tuple[int, int, float, float, bool]]:
    """(lo, hi, y, height, covered) per row; uncovered rows are collapsed gaps."""
    cuts: set[int] = set()
    covered: list[tuple[int, int]] = []
    for st in states:
        for r in st:
            cuts |= {r.start, r.start + r.size}
            covered.append((r.start, r.start + r.size))
    for ss in slots:
        for s in ss:
            cuts |= {s.mapping.gpa, s.mapping.end}
    rows = []
    y = 0.0
    for lo, hi in itertools.pairwise(sorted(cuts)):
        inside = any(a <= lo and hi <= b for a, b in covered)
        h = _row_height(hi - lo) if inside else GAP_H
        rows.append((lo, hi, y, h, inside))
        y += h
    return rows


def _span(rows: list[tuple[int, int, float, float, bool]], lo: int, hi: int) -> tuple[float, float]:
    ys = [(y, h) for a, b, y, h, _ in rows if a >= lo and b <= hi]
    if not ys:
        return 0.0, 0.0
    return ys[0][0], ys[-1][0] + ys[-1][1] - ys[0][0]


def short_title(label: str) -> str:
    """``path/to/file.yaml@step`` -> ``file.yaml@step`` (the folders say nothing)."""
    path, at, step = label.rpartition("@")
    if not at:
        return PurePath(label).name
    return f"{PurePath(path).name if '/' in path else path}@{step}"


def _label(r: DumpRange) -> str:
    off = f" @{r.offset:#x}" if r.offset else ""
    return f"{r.region}{off} · {size_text(r.size)}"


def render_svg(
    labels: Sequence[str],
    states: Sequence[Sequence[DumpRange]],
    slots: Sequence[Sequence[Slot]],
    changed: Sequence[set[int]],
) -> str:
    rows = _rows(states, slots)
    longest = max((len(_label(r)) for st in states for r in st), default=10)
    box_w = max(260.0, longest * CHAR_W + 16)
    col_w = box_w + SLOT_W + 24
    top = 56.0
    width = ADDR_W + len(states) * col_w + 10
    body_h = rows[-1][2] + rows[-1][3] if rows else 0.0
    legend_y = top + body_h + 30
    height = legend_y + 52
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="100%" font-family="sans-serif" font-size="11">',
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>',
    ]
    for lo, hi, y, _h, inside in rows:  # the address column
        yy = top + y
        if inside:
            out.append(
                f'<text x="8" y="{yy + 13:.1f}" font-family="monospace" font-size="10" '
                f'fill="#333">{lo:#018x}</text>'
            )
        else:
            out.append(
                f'<text x="8" y="{yy + 11:.1f}" font-size="9" fill="#999">'
                f"… {size_text(hi - lo)} not mapped</text>"
            )
    kinds: set[str] = set()
    any_slot = any_changed = False
    for col, (label, st) in enumerate(zip(labels, states, strict=True)):
        x0 = ADDR_W + col * col_w
        out.append(
            f'<text x="{x0:.1f}" y="{top - 14:.1f}" font-size="13" font-weight="bold">'
            f"{html.escape(short_title(label))}</text>"
        )
        for i, r in enumerate(st):
            y, h = _span(rows, r.start, r.start + r.size)
            kinds.add(r.type)
            hl = i in changed[col]
            any_changed |= hl
            stroke = (
                'stroke="#d50000" stroke-width="3"' if hl else 'stroke="#555" stroke-width="0.6"'
            )
            text = _label(r)
            out.append(
                f'<g class="range" data-region="{html.escape(r.region)}">'
                f'<rect x="{x0:.1f}" y="{top + y:.1f}" width="{box_w:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS.get(r.type, "#9e9e9e")}" {stroke}>'
                f"<title>{html.escape(r.region)} {r.start:#x}+{r.size:#x} {r.type}</title></rect>"
                f'<text x="{x0 + 6:.1f}" y="{top + y + min(h / 2 + 4, 16):.1f}">'
                f"{html.escape(text)}</text></g>"
            )
        for s in slots[col] if col < len(slots) else ():
            y, h = _span(rows, s.mapping.gpa, s.mapping.end)
            any_slot = True
            sx = x0 + box_w + 6
            out.append(
                f'<g class="slot"><rect x="{sx:.1f}" y="{top + y + 1:.1f}" '
                f'width="{SLOT_W - 4}" height="{max(h - 2, 1):.1f}" fill="#f5f5f5" '
                f'stroke="black" stroke-dasharray="3,2"/>'
                f'<text x="{sx + 5:.1f}" y="{top + y + min(h / 2 + 4, 15):.1f}" font-size="10">'
                f"slot {s.slot}</text></g>"
            )
    lx = 10.0
    entries = [(KIND_NAMES.get(k, k), f'fill="{COLOURS.get(k, "#9e9e9e")}"') for k in sorted(kinds)]
    if any_slot:
        entries.append(("KVM slot", 'fill="#f5f5f5" stroke="black" stroke-dasharray="3,2"'))
    if any_changed:
        entries.append(("changed", 'fill="white" stroke="#d50000" stroke-width="3"'))
    for name, style in entries:
        out.append(
            f'<rect x="{lx:.1f}" y="{legend_y:.1f}" width="14" height="12" {style}/>'
            f'<text x="{lx + 19:.1f}" y="{legend_y + 10:.1f}">{html.escape(name)}</text>'
        )
        lx += 30 + CHAR_W * len(name)
    out.append(
        f'<text x="10" y="{legend_y + 32:.1f}" font-size="10" fill="#555">Not to scale: a '
        f"row's height grows with the logarithm of its size (every range states its own); "
        f"gaps between mapped parts are collapsed.</text>"
    )
    out.append("</svg>")
    return "\n".join(out)


def render_html(title: str, svg: str, summary: Sequence[str]) -> str:
    items = "".join(f"<li>{html.escape(s)}</li>" for s in summary)
    short = " -> ".join(short_title(t) for t in title.split(" -> "))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(short)}"
        f"</title></head><body style='font-family:sans-serif;margin:12px'>"
        f"<h1 style='font-size:18px'>{html.escape(short)}</h1>{svg}<ul>{items}</ul>"
        "</body></html>\n"
    )
