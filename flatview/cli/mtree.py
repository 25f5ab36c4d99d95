"""QEMU's ``info mtree`` text: the tree view and the flat view (``-f``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from flatview.address_space import AddressSpace
from flatview.flatrange import FlatView
from flatview.region import MemoryRegion, RegionKind
from flatview.render import resolve_root


def _range(start: int, size: int) -> str:
    end = start + size - 1 if size else start
    return f"{start:016x}-{end:016x}"


def _type(mr: MemoryRegion) -> str:
    return ("nv-" if mr.nonvolatile else "") + mr.mtree_type()


def _print_region(
    out: list[str],
    mr: MemoryRegion,
    base: int,
    level: int,
    disabled: bool,
    aliased: list[MemoryRegion],
) -> None:
    if not mr.enabled and not disabled:
        return
    start = base + mr.addr
    head = f"{'  ' * level}{_range(start, mr.size)} (prio {mr.priority}, {_type(mr)}): "
    if mr.kind is RegionKind.ALIAS:
        target = mr.alias_target
        assert target is not None
        if target not in aliased:
            aliased.append(target)
        line = f"{head}alias {mr.name} @{target.name} {_range(mr.alias_offset, mr.size)}"
    else:
        line = head + mr.name
    if disabled and not mr.enabled:
        line += " [disabled]"
    out.append(line)
    children = sorted(mr.subregions, key=lambda c: (c.addr, -c.priority))
    for child in children:
        _print_region(out, child, start, level + 1, disabled, aliased)


def format_tree(spaces: Sequence[AddressSpace], *, disabled: bool = False) -> str:
    """``info mtree`` (``disabled=True`` is ``-D``)."""
    out: list[str] = []
    aliased: list[MemoryRegion] = []
    groups: dict[int, list[AddressSpace]] = {}
    for sp in spaces:
        groups.setdefault(id(sp.root), []).append(sp)
    for group in groups.values():
        for sp in sorted(group, key=lambda s: s.name):
            out.append(f"address-space: {sp.name}")
        _print_region(out, group[0].root, 0, 1, disabled, aliased)
        out.append("")
    done: set[int] = set()
    while aliased:
        mr = aliased.pop(0)
        if id(mr) in done:
            continue
        done.add(id(mr))
        out.append(f"memory-region: {mr.name}")
        _print_region(out, mr, -mr.addr, 1, disabled, aliased)
        out.append("")
    return "\n".join(out) + "\n"


def format_flat(spaces: Sequence[AddressSpace], *, kvm: Collection[tuple[int, int]] = ()) -> str:
    """``info mtree -f``; ``kvm`` holds (start, size) of ranges with a KVM slot."""
    out: list[str] = []
    views: dict[int, tuple[FlatView, list[AddressSpace]]] = {}
    for sp in spaces:
        views.setdefault(id(sp.flatview), (sp.flatview, []))[1].append(sp)
    for n, (view, group) in enumerate(views.values()):
        out.append(f"FlatView #{n}")
        for sp in group:
            alias = ""
            if sp.root.kind is RegionKind.ALIAS and sp.root.alias_target is not None:
                alias = f", alias {sp.root.alias_target.name}"
            out.append(f' AS "{sp.name}", root: {sp.root.name}{alias}')
        root = resolve_root(group[0].root)
        out.append(f" Root memory region: {root.name if root is not None else '(none)'}")
        if not len(view):
            out.append("  No rendered FlatView")
        kvm_set = set(kvm)
        for fr in view:
            mark = " KVM" if (fr.addr, fr.size) in kvm_set else ""
            out.append(f"  {fr}{mark}")
        out.append("")
    return "\n".join(out) + "\n"


def flat_json(spaces: Sequence[AddressSpace]) -> dict[str, object]:
    """The stable JSON of ``flatview show --flat --json``."""
    return {
        "address_spaces": {
            sp.name: [
                {
                    "start": fr.addr,
                    "size": fr.size,
                    "region": fr.region.name,
                    "offset": fr.offset_in_region,
                    "kind": fr.mtree_type(),
                    "readonly": fr.readonly,
                }
                for fr in sp.flatview
            ]
            for sp in spaces
        }
    }
