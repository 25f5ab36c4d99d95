"""Flat layouts (from dumps, or from views of other trees) rebuilt as a region tree.

Each region name becomes one backing block (RAM, ROM device or RAM device) big
enough for every state; a state is a set of aliases onto those blocks. Swapping
states in one transaction gives the KVM listener the commit between them.
"""

from __future__ import annotations

from collections.abc import Sequence

from flatview.address_space import AddressSpace
from flatview.cli.dump import DumpRange
from flatview.errors import FlatviewError, InputError
from flatview.flatrange import FlatView
from flatview.hostmem import PAGE_SIZE, page_align_up
from flatview.region import MemoryRegion, MmioOps, RegionKind
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
        need: dict[str, tuple[str, int, DumpRange]] = {}
        for state in states:
            for r in state:
                typ, size, widest = need.get(r.region, (r.type, 0, r))
                if r.offset + r.size > size:
                    size, widest = r.offset + r.size, r
                need[r.region] = (typ if typ != "i/o" else r.type, size, widest)
        self.blocks: dict[str, MemoryRegion] = {}
        for name, (typ, size, widest) in need.items():
            try:
                self.blocks[name] = self._block(name, typ, max(page_align_up(size), PAGE_SIZE))
            except FlatviewError as e:
                self.close()
                raise InputError(widest.path or "(view)", widest.line, str(e)) from None
        self.current: MemoryRegion | None = None
        self._shown = 0
        self.space = AddressSpace(self.root, "memory")

    def _block(self, name: str, typ: str, size: int) -> MemoryRegion:
        s = self.system
        if typ == "romd":
            return s.rom_device(name, size, MmioOps())
        if typ == "ramd":
            return s.ram_device(name, size)
        if typ in ("ram", "rom"):
            return s.ram(name, size)
        return s.mmio(name, size, MmioOps())

    def show(self, state: Sequence[DumpRange]) -> None:
        """Replace the current state by ``state`` in one transaction: the state's
        aliases are built in a container of their own, swapped in for the last one."""
        layer = self.system.container(f"state#{self._shown}", 2**64)
        self._shown += 1
        with self.system.transaction():
            for i, r in enumerate(state):
                block = self.blocks[r.region]
                alias = self.system.alias(f"{r.region}#{i}", block, r.offset, r.size)
                if r.type == "rom":
                    alias.set_readonly(True)
                if r.nonvolatile:
                    alias.set_nonvolatile(True)
                layer.add_subregion(r.start, alias)
            if self.current is not None:
                self.root.del_subregion(self.current)
            for r in state:
                block = self.blocks[r.region]
                if block.kind is RegionKind.ROM_DEVICE:
                    # a ROM device shown as i/o has left romd mode (reads go to the device)
                    block.set_romd(r.type == "romd")
            self.root.add_subregion(0, layer)
        self.current = layer

    def close(self) -> None:
        for mr in self.blocks.values():
            mr.close()
