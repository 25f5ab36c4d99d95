"""A small custom listener and how to test it with flatview's test kit.

``GuestRamTable`` keeps the table a vhost-user-style backend needs: every RAM range
the guest can reach (gpa, size, region, offset, read-only), kept up to date from
the listener callbacks alone.  ``tests/test_custom_listener_example.py`` checks it
against random region trees and transactions (``flatview.testing``) with a
conformance check after every commit.
"""

from __future__ import annotations

from flatview import AddressSpace, ListenerBase, MemorySystem
from flatview.section import MemoryRegionSection
from flatview.testing import RangeState


class GuestRamTable(ListenerBase):
    """gpa -> (size, region name, offset in region, read-only) of every RAM range."""

    def __init__(self) -> None:
        self.table: dict[int, tuple[int, str, int, bool]] = {}

    def region_add(self, section: MemoryRegionSection) -> None:
        if section.range.ram_readable:
            self.table[section.addr] = (
                section.size,
                section.region.name,
                section.offset_in_region,
                section.readonly,
            )

    def region_del(self, section: MemoryRegionSection) -> None:
        self.table.pop(section.addr, None)

    def state(self) -> list[RangeState]:
        """The table in the form :class:`flatview.testing.ConformanceCheck` compares."""
        return [(gpa, *entry) for gpa, entry in sorted(self.table.items())]


def main() -> None:
    s = MemorySystem()
    system = s.container("system", 2**32)
    ram = s.ram("ram", 0x100000)
    system.add_subregion(0, ram)
    system.add_subregion(0x40000, s.mmio("dev", 0x1000), priority=1)
    space = AddressSpace(system, "memory")
    table = GuestRamTable()
    space.add_listener(table)
    for row in table.state():
        print(row)


if __name__ == "__main__":
    main()
