"""Random region trees (hypothesis strategies), recorded as plain data.

The generator records every node, child insertion order and attribute in its own
structures (:class:`Tree`, :class:`Node`), so an oracle can compute what the guest
should see without reading the library's render order.  Trees mix RAM, ROM, MMIO,
RAM and ROM devices, containers and aliases (of aliases), overlaps with equal and
different priorities, disabled, read-only, nonvolatile and unmergeable regions,
and pairs of adjacent windows onto one target (which QEMU's merge rule must join).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st

from flatview import MemoryRegion, MemorySystem, MmioOps

UNIT = 0x1000
SPACE_UNITS = 48
SCAN_UNITS = 768
"""Every generated mapping ends below this many units (bounded nesting of offsets)."""


@dataclass
class Node:
    region: MemoryRegion
    kind: str
    size_units: int
    enabled: bool = True
    readonly: bool = False
    nonvolatile: bool = False
    unmergeable: bool = False
    target: Node | None = None
    alias_offset_units: int = 0
    # (child, offset_units, priority, insertion sequence number)
    children: list[tuple[Node, int, int, int]] = field(default_factory=list)
    parented: bool = False


@dataclass
class Tree:
    system: MemorySystem
    root: Node
    nodes: list[Node]
    seq: int = 0

    def add_child(self, parent: Node, child: Node, offset_units: int, prio: int) -> None:
        self.seq += 1
        parent.region.add_subregion(offset_units * UNIT, child.region, prio)
        parent.children.append((child, offset_units, prio, self.seq))
        child.parented = True

    def del_child(self, parent: Node, child: Node) -> None:
        parent.region.del_subregion(child.region)
        parent.children = [c for c in parent.children if c[0] is not child]
        child.parented = False


_LEAF_KINDS = ("ram", "rom", "mmio", "ram_device", "rom_device")


@st.composite
def trees(draw: st.DrawFn, max_nodes: int = 10) -> Tree:
    system = MemorySystem()
    nodes: list[Node] = []
    n = draw(st.integers(1, max_nodes))
    for i in range(n):
        kind = draw(st.sampled_from((*_LEAF_KINDS, "container", "container", "alias", "alias")))
        if kind == "alias" and not nodes:
            kind = "ram"
        name = f"{kind}{i}"
        if kind == "alias":
            target = draw(st.sampled_from(nodes))
            off = draw(st.integers(0, target.size_units - 1)) if target.size_units > 1 else 0
            size = draw(st.integers(1, max(1, target.size_units - off)))
            size = min(size, target.size_units - off)
            mr = system.alias(name, target.region, off * UNIT, size * UNIT)
            node = Node(mr, kind, size, target=target, alias_offset_units=off)
        else:
            size = draw(st.integers(1, 24))
            if kind == "container":
                mr = system.container(name, size * UNIT)
            elif kind == "mmio":
                mr = system.mmio(name, size * UNIT, MmioOps())
            else:
                mr = getattr(system, kind)(name, size * UNIT)
            node = Node(mr, kind, size)
        nodes.append(node)
    tree = Tree(system, Node(system.container("root", 2**64), "container", 2**64 // UNIT), nodes)
    # attach: containers and mmio may take earlier, unparented nodes as children
    for node in nodes:
        if node.kind in ("container", "mmio"):
            for child in nodes:
                if child is node or child.parented or nodes.index(child) > nodes.index(node):
                    continue
                if draw(st.booleans()):
                    off = draw(st.integers(0, node.size_units))
                    tree.add_child(node, child, off, draw(st.integers(-2, 2)))
    for node in nodes:
        if not node.parented and draw(st.integers(0, 3)) > 0:
            off = draw(st.integers(0, SPACE_UNITS - 8))
            tree.add_child(tree.root, node, off, draw(st.integers(-2, 2)))
    for node in nodes:
        apply_flags(draw, node)
    # adjacent windows onto one target: the pieces QEMU's simplify must merge again
    leaves = [x for x in nodes if x.kind != "alias" and x.size_units >= 2]
    for j in range(draw(st.integers(0, 2)) if leaves else 0):
        target = draw(st.sampled_from(leaves))
        k = draw(st.integers(1, target.size_units - 1))
        at = draw(st.integers(0, SPACE_UNITS - 8))
        prio = draw(st.integers(-1, 3))
        for part, (off, size) in enumerate(((0, k), (k, target.size_units - k))):
            mr = system.alias(f"win{j}.{part}", target.region, off * UNIT, size * UNIT)
            win = Node(mr, "alias", size, target=target, alias_offset_units=off)
            nodes.append(win)
            tree.add_child(tree.root, win, at + off, prio)
            if draw(st.integers(0, 4)) == 0:
                apply_flags(draw, win)
    return tree


def apply_flags(draw: st.DrawFn, node: Node) -> None:
    if draw(st.integers(0, 5)) == 0:
        node.enabled = False
        node.region.set_enabled(False)
    if node.kind in ("alias", "ram", "container") and draw(st.integers(0, 3)) == 0:
        node.readonly = True
        node.region.set_readonly(True)
    elif node.kind == "rom":
        node.readonly = True
    if draw(st.integers(0, 6)) == 0:
        node.nonvolatile = True
        node.region.set_nonvolatile(True)
    if draw(st.integers(0, 6)) == 0:
        node.unmergeable = True
        node.region.set_unmergeable(True)
