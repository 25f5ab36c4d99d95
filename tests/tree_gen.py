"""The brute-force oracle for the renderer: what the guest sees at each unit of a
generated tree (:mod:`flatview.testing.trees`), resolved by walking the generator's
own record of the tree."""

from __future__ import annotations

from flatview import MemoryRegion
from flatview.testing.trees import SCAN_UNITS, SPACE_UNITS, UNIT, Node, Tree, apply_flags, trees

__all__ = ["SCAN_UNITS", "SPACE_UNITS", "UNIT", "Node", "Tree", "apply_flags", "trees"]


# -- the brute-force oracle -------------------------------------------------------------
Hit = tuple[MemoryRegion, int, bool, bool, bool, tuple[int, ...]]


def resolve(
    node: Node,
    addr: int,
    base: int,
    ro: bool,
    nv: bool,
    um: bool,
    path: tuple[int, ...],
    offset_units: int,
) -> Hit | None:
    """What the guest sees at ``addr`` through ``node`` mapped at ``base + offset``."""
    if not node.enabled:
        return None
    base += offset_units * UNIT
    ro, nv, um = ro or node.readonly, nv or node.nonvolatile, um or node.unmergeable
    path = (*path, id(node))
    if not base <= addr < base + node.size_units * UNIT:
        return None
    if node.kind == "alias":
        assert node.target is not None
        t = node.target
        # the target is entered at its own offset cancelled out
        return resolve_target(t, addr, base - node.alias_offset_units * UNIT, ro, nv, um, path)
    order = sorted(node.children, key=lambda c: (-c[2], -c[3]))
    for child, off, _prio, _seq in order:
        hit = resolve(child, addr, base, ro, nv, um, path, off)
        if hit is not None:
            return hit
    if node.kind in ("container", "alias"):
        return None
    return (node.region, addr - base, ro, nv, um, path)


def resolve_target(
    node: Node, addr: int, base: int, ro: bool, nv: bool, um: bool, path: tuple[int, ...]
) -> Hit | None:
    """Enter an alias target: its own mapping address does not matter."""
    return resolve(node, addr, base, ro, nv, um, path, 0)


def expected_ranges(tree: Tree) -> list[tuple[int, int, str, int, bool, bool, bool]]:
    """Oracle view: per-unit resolution, merged by QEMU's rule (unmergeable pieces split
    where the render path changes)."""
    out: list[list[object]] = []
    prev_path: tuple[int, ...] | None = None
    for u in range(SCAN_UNITS):
        addr = u * UNIT
        hit = resolve(tree.root, addr, 0, False, False, False, (), 0)
        if hit is None:
            prev_path = None
            continue
        mr, off, ro, nv, um, path = hit
        if out:
            last = out[-1]
            if (
                last[0] + last[1] == addr  # type: ignore[operator]
                and last[7] is mr
                and last[3] + last[1] == off  # type: ignore[operator]
                and (last[4], last[5]) == (ro, nv)
                and not um
                and not last[6]
            ):
                last[1] += UNIT  # type: ignore[operator]
                prev_path = path
                continue
            if um and last[6] and prev_path == path and last[0] + last[1] == addr:  # type: ignore[operator]
                last[1] += UNIT  # type: ignore[operator]
                continue
        out.append([addr, UNIT, mr.name, off, ro, nv, um, mr])
        prev_path = path
    return [(a, s, n, o, r, v, m) for a, s, n, o, r, v, m, _ in out]  # type: ignore[misc]
