"""The test kit (flatview.testing) on the example's custom listener: random trees,
random transactions, and a conformance check after every commit; the plugin's
fixtures; and the check catching a listener that forgets a callback."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from examples.custom_listener import GuestRamTable
from flatview import AddressSpace
from flatview.section import MemoryRegionSection
from flatview.testing import ConformanceCheck, ConformanceError, RangeState
from flatview.testing.steps import apply, transactions
from flatview.testing.trees import trees


def check_on(space: AddressSpace, listener: GuestRamTable) -> ConformanceCheck:
    def keep(r: RangeState) -> bool:
        fr = space.flatview.lookup(r[0])
        return fr is not None and fr.ram_readable

    return ConformanceCheck(space, listener.state, keep)


@given(st.data())
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_ram_table_follows_the_view_after_every_commit(data: st.DataObject) -> None:
    tree = data.draw(trees())
    space = AddressSpace(tree.root.region, "memory")
    table = GuestRamTable()
    space.add_listener(table)
    check = check_on(space, table)
    for transaction in data.draw(transactions(tree)):
        apply(tree, transaction)  # ConformanceError from the commit if the table is off
    assert check.commits >= 1
    check.close()


class Forgetful(GuestRamTable):
    """Never deletes: its table keeps ranges that left the view."""

    def region_del(self, section: MemoryRegionSection) -> None:
        pass


def test_the_check_catches_a_listener_that_drops_a_callback(
    memory_system: Any, conformance: Any
) -> None:
    s = memory_system
    system = s.container("system", 2**32)
    ram = s.ram("ram", 0x100000)
    system.add_subregion(0, ram)
    space = AddressSpace(system, "memory")
    table = Forgetful()
    space.add_listener(table)
    conformance(space, table.state)
    with pytest.raises(ConformanceError, match=r"after commit 2 on 'memory': missing \[\], extra"):
        ram.set_enabled(False)


def test_the_plugin_gives_a_simulated_vm(sim_vm: Any) -> None:
    assert sim_vm.slots() == {} and sim_vm.timeline is not None
