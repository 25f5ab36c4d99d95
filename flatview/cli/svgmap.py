"""A picture of the guest-physical map: ranges coloured by kind, KVM slots outlined,
changed ranges highlighted; a segmented axis collapses the gaps of a sparse
64-bit space."""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence

from flatview.cli.dump import DumpRange
from listeners.planner import Slot

COLOURS = {
    "ram": "#4caf50",
    "rom": "#2196f3",
    "romd": "#00bcd4",
    "ramd": "#8bc34a",
    "i/o": "#ff9800",
    "container": "#bdbdbd",
}
GAP = 28
ROW_H = 46


def _layout(
    states: Sequence[Sequence[DumpRange]], slots: Sequence[Sequence[Slot]]
) -> tuple[list[tuple[int, int, float, float]], float]:
    """Elementary intervals (lo, hi) with their x and width; gaps collapsed."""
    cuts: set[int] = set()
    covered: list[tuple[int, int]] = []
    for st in states:
        for r in st:
            cuts |= {r.start, r.start + r.size}
            covered.append((r.start, r.start + r.size))
    for ss in slots:
        for s in ss:
            cuts |= {s.mapping.gpa, s.mapping.end}
    points = sorted(cuts)
    cells = []
    x = 10.0
    for lo, hi in itertools.pairwise(points):
        inside = any(a <= lo and hi <= b for a, b in covered)
        w = (18 + 7 * math.log2(max(hi - lo, 1) / 4096 + 1)) if inside else GAP
        cells.append((lo, hi, x, w))
        x += w
    return cells, x + 10


def _span(cells: list[tuple[int, int, float, float]], lo: int, hi: int) -> tuple[float, float]:
    xs = [(x, w) for a, b, x, w in cells if a >= lo and b <= hi]
    if not xs:
        return 0.0, 0.0
    return xs[0][0], xs[-1][0] + xs[-1][1] - xs[0][0]


def render_svg(
    labels: Sequence[str],
    states: Sequence[Sequence[DumpRange]],
    slots: Sequence[Sequence[Slot]],
    changed: Sequence[set[int]],
) -> str:
    cells, width = _layout(states, slots)
    height = 60 + len(states) * (ROW_H + 70) + 50
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height}" '
        f'font-family="sans-serif" font-size="10">',
        f'<rect width="{width:.0f}" height="{height}" fill="white"/>',
    ]
    for lo, _hi, x, w in cells:
        if w == GAP and not any(r.start <= lo < r.start + r.size for st in states for r in st):
            out.append(f'<text x="{x + 6:.1f}" y="40" fill="#999">…</text>')
    for row, (label, st) in enumerate(zip(labels, states, strict=True)):
        y = 60 + row * (ROW_H + 70)
        out.append(
            f'<text x="10" y="{y - 8}" font-size="12" font-weight="bold">'
            f"{html.escape(label)}</text>"
        )
        for i, r in enumerate(st):
            x, w = _span(cells, r.start, r.start + r.size)
            colour = COLOURS.get(r.type, "#9e9e9e")
            hl = i in changed[row]
            stroke = (
                'stroke="#d50000" stroke-width="3"' if hl else 'stroke="#333" stroke-width="0.5"'
            )
            out.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{ROW_H}" '
                f'fill="{colour}" {stroke}><title>{html.escape(r.region)} '
                f"{r.start:#x}+{r.size:#x} {r.type}</title></rect>"
            )
            out.append(
                f'<text x="{x + 2:.1f}" y="{y + 14}" font-size="9">'
                f"{html.escape(r.region[: max(3, int(w // 6))])}</text>"
            )
            out.append(
                f'<text x="{x + 1:.1f}" y="{y + ROW_H + 12}" font-size="8" fill="#555" '
                f'transform="rotate(30 {x + 1:.1f} {y + ROW_H + 12})">{r.start:#x}</text>'
            )
        for s in slots[row] if row < len(slots) else ():
            x, w = _span(cells, s.mapping.gpa, s.mapping.end)
            out.append(
                f'<rect x="{x + 1:.1f}" y="{y + 22}" width="{max(w - 2, 1):.1f}" '
                f'height="{ROW_H - 26}" fill="none" stroke="black" stroke-dasharray="3,2">'
                f"<title>slot {s.slot}</title></rect>"
            )
    ly = height - 30
    lx = 10
    for name, colour in COLOURS.items():
        out.append(
            f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{lx + 16}" y="{ly + 10}">{name}</text>'
        )
        lx += 80
    out.append(
        f'<rect x="{lx}" y="{ly}" width="18" height="12" fill="none" stroke="black" '
        f'stroke-dasharray="3,2"/><text x="{lx + 22}" y="{ly + 10}">KVM slot</text>'
    )
    lx += 90
    out.append(
        f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="white" stroke="#d50000" '
        f'stroke-width="3"/><text x="{lx + 16}" y="{ly + 10}">changed</text>'
    )
    out.append("</svg>")
    return "\n".join(out)


def render_html(title: str, svg: str, summary: Sequence[str]) -> str:
    items = "".join(f"<li>{html.escape(s)}</li>" for s in summary)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title></head><body style='font-family:sans-serif'><h1>{html.escape(title)}</h1>"
        f"<div style='overflow-x:auto'>{svg}</div><ul>{items}</ul></body></html>\n"
    )
