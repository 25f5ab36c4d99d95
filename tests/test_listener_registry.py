"""The system's one registry of listeners, and a KVM listener that works only from
what it is told."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flatview import AddressSpace, FlatView, MemoryRegionSection, MemorySystem
from flatview.testing.steps import ATTRIBUTE_OPS, mutate
from kvm_backend.sim import SimVm
from listeners import RecordingListener
from listeners.kvm_listener import KvmMemoryListener
from listeners.slot_layout import desired_mappings
from tests.test_kvm_listener_sim import page_map
from tests.tree_gen import trees


def two_spaces() -> tuple[MemorySystem, AddressSpace, AddressSpace]:
    s = MemorySystem()
    a_root = s.container("a", 2**64)
    b_root = s.container("b", 2**64)
    a_root.add_subregion(0, s.ram("ram-a", 0x10000))
    b_root.add_subregion(0, s.ram("ram-b", 0x10000))
    return s, AddressSpace(a_root, "a"), AddressSpace(b_root, "b")


def test_listener_on_two_spaces_gets_one_begin_and_one_commit_per_transaction() -> None:
    s, a, b = two_spaces()
    rec = RecordingListener()
    a.add_listener(rec)
    b.add_listener(rec)
    rec.clear()
    with s.transaction():
        a.root.add_subregion(0x20000, s.ram("more-a", 0x1000))
        b.root.add_subregion(0x20000, s.ram("more-b", 0x1000))
    assert rec.names() == [
        "begin",
        "region_nop",
        "region_add",
        "region_nop",
        "region_add",
        "commit",
    ]
    spaces = [e.section.address_space for e in rec.events if e.section is not None]
    assert spaces == [a, a, b, b]
    assert s.listeners == (rec,) and a.listeners == (rec,) and b.listeners == (rec,)


def test_removing_a_listener_from_one_space_keeps_it_on_the_other() -> None:
    s, a, b = two_spaces()
    rec = RecordingListener()
    a.add_listener(rec)
    b.add_listener(rec)
    a.remove_listener(rec)
    assert a.listeners == () and b.listeners == (rec,) and s.listeners == (rec,)
    rec.clear()
    a.root.add_subregion(0x20000, s.ram("more-a", 0x1000))
    assert rec.names() == ["begin", "region_nop", "commit"]  # b's range only


def test_listeners_run_in_priority_order_across_spaces() -> None:
    s, a, b = two_spaces()
    late, early = RecordingListener(5, name="late"), RecordingListener(1, name="early")
    a.add_listener(late)
    b.add_listener(early)
    assert s.listeners == (early, late)


class _FailingAdd(RecordingListener):
    def region_add(self, section: MemoryRegionSection) -> None:
        raise RuntimeError("buggy device listener")


def test_a_listener_whose_replay_raises_is_not_registered() -> None:
    s, a, _ = two_spaces()
    with pytest.raises(RuntimeError):
        a.add_listener(_FailingAdd())
    assert a.listeners == () and s.listeners == ()


def _no_view(self: AddressSpace) -> FlatView:
    raise AssertionError("the KVM listener read the address space's FlatView")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_kvm_listener_plans_from_the_queued_sections_without_the_view(
    data: st.DataObject,
) -> None:
    tree = data.draw(trees())
    space = AddressSpace(tree.root.region, "memory")
    vm = SimVm()
    kl = KvmMemoryListener(vm, space)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(AddressSpace, "flatview", property(_no_view))
        for _ in range(data.draw(st.integers(1, 4))):
            with tree.system.transaction():
                for _ in range(data.draw(st.integers(1, 3))):
                    op = data.draw(st.sampled_from((*ATTRIBUTE_OPS, "move")))
                    node = data.draw(st.sampled_from(tree.nodes))
                    mutate(tree, op, node, data.draw(st.integers(0, 40)))
    want = desired_mappings(space.flatview)
    assert page_map([s.mapping for s in kl.slots]) == page_map(want)
    assert {s.slot: s.mapping.gpa for s in kl.slots} == {
        k & 0xFFFF: m.gpa for k, m in vm.slots().items()
    }
