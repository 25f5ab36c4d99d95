"""``flatview export --qmp SOCKET``: a live QEMU's region tree as a scenario file.

Parses ``info mtree -D`` (every address space's tree, disabled regions marked, and
the ``memory-region:`` sections of alias targets) into regions, subregions and
address spaces.  Two things the tree text does not say are taken from ``info mtree
-f``: whether an I/O region has its own accesses (QEMU's ``io`` root fills the
holes between its children: it shows in the flat view) or is a plain container;
and an alias's read-only flag (a RAM range that renders as
``rom`` through an alias).  An I/O region that never shows in a flat view is
exported as a container (QEMU prints plain containers as ``i/o`` too).  Region
names are made unique (``dma-page#2``).
"""

from __future__ import annotations

import re
from typing import Any

import attrs
import yaml

from flatview.cli.dump import DumpRange, DumpView
from flatview.errors import InputError

_LINE = re.compile(
    r"^(?P<indent> *)(?P<start>[0-9a-f]{16})-(?P<end>[0-9a-f]{16}) \(prio (?P<prio>-?\d+), "
    r"(?P<type>[a-z/-]+)\): (?P<rest>.*?)(?P<disabled> \[disabled\])?$"
)
_ALIAS = re.compile(
    r"^alias (?P<name>.+) @(?P<target>.+) (?P<ts>[0-9a-f]{16})-(?P<te>[0-9a-f]{16})$"
)
KINDS = {"ram": "ram", "rom": "rom", "ramd": "ram_device", "romd": "rom_device", "i/o": "mmio"}


@attrs.define
class TreeNode:
    name: str
    start: int
    size: int
    prio: int
    type: str
    enabled: bool
    target: str | None = None
    target_offset: int = 0
    children: list[TreeNode] = attrs.field(factory=list)
    unique: str = ""
    readonly: bool = False


def parse_tree(text: str, path: str) -> tuple[dict[str, TreeNode], dict[str, TreeNode]]:
    """(address space -> root node, memory-region section name -> root node)."""
    spaces: dict[str, TreeNode] = {}
    sections: dict[str, TreeNode] = {}
    pending: list[str] = []
    section: str | None = None
    stack: list[tuple[int, TreeNode]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith("address-space: "):
            if stack:
                pending, stack = [], []
            pending.append(line.removeprefix("address-space: "))
            section = None
            continue
        if line.startswith("memory-region: "):
            pending, stack = [], []
            section = line.removeprefix("memory-region: ")
            continue
        m = _LINE.match(line)
        if m is None:
            raise InputError(path, n, f"unrecognised 'info mtree' line: {line.strip()[:60]!r}")
        start, end = int(m["start"], 16), int(m["end"], 16)
        typ = m["type"]
        node = TreeNode(m["rest"], start, end - start + 1, int(m["prio"]), typ, not m["disabled"])
        a = _ALIAS.match(m["rest"])
        if a is not None:
            node.name, node.target = a["name"], a["target"]
            node.target_offset = int(a["ts"], 16)
        depth = len(m["indent"])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            stack[-1][1].children.append(node)
        elif section is not None:
            sections[section] = node
        else:
            if not pending:
                raise InputError(path, n, "a region before any 'address-space:' line")
            for name in pending:
                spaces[name] = node
        stack.append((depth, node))
    if not spaces:
        raise InputError(path, 0, "no 'address-space:' block (is this 'info mtree -D'?)")
    return spaces, sections


def export(tree_text: str, views: list[DumpView], path: str) -> dict[str, Any]:
    """The scenario (as a dict ready for YAML) of the tree in ``tree_text``."""
    spaces, sections = parse_tree(tree_text, path)
    shown = {r.region for v in views for r in v.ranges}
    read_only: set[int] = set()  # ids of aliases that render their RAM as rom
    roots: dict[str, TreeNode] = {}  # top-level nodes by name: the ones aliases may target
    taken: dict[str, int] = {}
    regions: dict[str, dict[str, Any]] = {}
    subs: dict[str, list[dict[str, Any]]] = {}
    order: list[TreeNode] = []

    def name_of(node: TreeNode) -> str:
        k = taken.get(node.name, 0) + 1
        taken[node.name] = k
        return node.name if k == 1 else f"{node.name}#{k}"

    def visit(node: TreeNode) -> None:
        node.unique = name_of(node)
        order.append(node)
        for child in node.children:
            visit(child)

    seen_roots: dict[int, TreeNode] = {}
    for root in spaces.values():
        if id(root) not in seen_roots:
            seen_roots[id(root)] = root
            visit(root)
            roots.setdefault(root.name, root)
    for name, root in sections.items():
        if name in roots:
            continue  # the same region as an address space's root, printed again
        found = _find(order, name)
        if found is not None and not found.target:
            roots[name] = found  # printed again under its own heading: same region
            continue
        visit(root)
        roots[name] = root
    aliases = [n for n in order if n.target is not None and n.type == "ram" and n.enabled]
    for r in (r for v in views for r in v.ranges if r.type == "rom"):
        read_only.update(id(a) for a in _shown_through(r, aliases))
    for node in order:
        spec: dict[str, Any] = {"size": node.size}
        if node.target is not None:
            target = roots.get(node.target) or _find(order, node.target)
            if target is None:
                raise InputError(path, 0, f"alias {node.name!r}: unknown target {node.target!r}")
            spec = {"kind": "alias", "target": target.unique, "offset": node.target_offset,
                    "size": node.size}  # fmt: skip
        elif node.type == "i/o":  # own accesses only if they show somewhere
            spec = {"kind": "mmio" if node.name in shown else "container", "size": node.size}
        else:
            kind = KINDS.get(node.type.removeprefix("nv-"))
            if kind is None:
                raise InputError(path, 0, f"region {node.name!r}: unknown type {node.type!r}")
            spec = {"kind": kind, "size": node.size}
        if id(node) in read_only:
            spec["readonly"] = True
        if node.type.startswith("nv-"):
            spec["nonvolatile"] = True
        if not node.enabled:
            spec["enabled"] = False
        regions[node.unique] = spec
        for child in node.children:
            subs.setdefault(node.unique, []).append(
                {"region": child.unique, "at": child.start - node.start, "priority": child.prio}
            )
    for kids in subs.values():
        kids.reverse()  # QEMU lists the newest of equal priority first; we add oldest first
    return {
        "version": 1,
        "regions": regions,
        "subregions": subs,
        "address_spaces": {name: root.unique for name, root in spaces.items()},
    }


def _shown_through(r: DumpRange, aliases: list[TreeNode]) -> list[TreeNode]:
    """The aliases a read-only flat range of RAM is seen through (the tree text does
    not print an alias's read-only flag): at each point where one of them starts, of
    the enabled aliases that map ``r``'s bytes there, the one of highest priority
    (the narrowest among equals)."""
    end = r.start + r.size
    near = [
        a
        for a in aliases
        if a.target == r.region and a.start < end and r.start < a.start + a.size
        and a.target_offset - a.start == r.offset - r.start
    ]  # fmt: skip
    points = sorted({r.start, *(a.start for a in near if r.start < a.start < end)})
    out = []
    for p in points:
        here = [a for a in near if a.start <= p < a.start + a.size]
        if here:
            out.append(max(here, key=lambda a: (a.prio, -a.size)))
    return out


def _find(order: list[TreeNode], name: str) -> TreeNode | None:
    return next((n for n in order if n.name == name and n.target is None), None)


def to_yaml(doc: dict[str, Any]) -> str:
    header = "# exported by flatview export from a live QEMU (info mtree -D and -f)\n"
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100)
