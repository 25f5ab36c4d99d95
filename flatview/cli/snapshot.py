"""Flat layouts (from dumps, or from views of other trees) rebuilt as a region tree.

Each region name becomes one backing block (RAM, ROM device or RAM device) big
enough for every state; a state is a set of aliases onto those blocks. Swapping
states in one transaction gives the KVM listener the commit between them.
"""

from __future__ import annotations

from collections.abc import Sequence

from flatview.address_space import AddressSpace
from flatview.cli.dump import DumpRange
from flatview.flatrange import FlatView
from flatview.hostmem import PAGE_SIZE, page_align_up
from flatview.region import MemoryRegion, MmioOps
from flatview.system import MemorySystem


def ranges_of_view(view: FlatView) -> list[DumpRange]:
    return [
        DumpRange(
            fr.addr,
            fr.size,
            fr.mtree_type().removeprefix("nv-"),
            fr.region.name,
            fr.offset_in_region,
            fr.nonvolatile,
        )
        for fr in view
    ]


class SnapshotTree:
    def __init__(self, states: Sequence[Sequence[DumpRange]]) -> None:
        self.system = MemorySystem()
        self.root = self.system.container("snapshot", 2**64)
        need: dict[str, tuple[str, int]] = {}
        for state in states:
            for r in state:
                typ, size = need.get(r.region, (r.type, 0))
                need[r.region] = (typ if typ != "i/o" else r.type, max(size, r.offset + r.size))
        self.blocks: dict[str, MemoryRegion] = {}
        s = self.system
        for name, (typ, size) in need.items():
            size = max(page_align_up(size), PAGE_SIZE)
            if typ == "romd":
                self.blocks[name] = s.rom_device(name, size, MmioOps())
            elif typ == "ramd":
                self.blocks[name] = s.ram_device(name, size)
            elif typ in ("ram", "rom"):
                self.blocks[name] = s.ram(name, size)
            else:
                self.blocks[name] = s.mmio(name, size, MmioOps())
        self.current: list[MemoryRegion] = []
        self.space = AddressSpace(self.root, "memory")

    def show(self, state: Sequence[DumpRange]) -> None:
        """Replace the current state by ``state`` in one transaction."""
        with self.system.transaction():
            for alias in self.current:
                self.root.del_subregion(alias)
            self.current = []
            for i, r in enumerate(state):
                alias = self.system.alias(
                    f"{r.region}#{i}", self.blocks[r.region], r.offset, r.size
                )
                if r.type == "rom":
                    alias.set_readonly(True)
                if r.nonvolatile:
                    alias.set_nonvolatile(True)
                self.root.add_subregion(r.start, alias)
                self.current.append(alias)

    def close(self) -> None:
        for mr in self.blocks.values():
            mr.close()
