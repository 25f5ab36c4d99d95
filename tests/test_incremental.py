"""Incremental commits: the damaged windows re-rendered into the previous view equal
the full render, and a listener gets exactly the full diff's callbacks (issue 12)."""

from __future__ import annotations

from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from flatview import (
    AddressSpace,
    FlatView,
    ListenerBase,
    MemoryListener,
    diff_views,
    render,
    resolve_root,
)
from flatview.listener import supports_resize
from kvm_backend import SimVm
from listeners import KvmMemoryListener, RecordingListener
from tests.test_diff import apply
from tests.tree_gen import UNIT, Tree, trees

OPS = ("enable", "readonly", "move", "alias_offset", "log", "size", "detach", "attach")


class QuietRecorder(RecordingListener):
    """Records everything but region_nop, which it does not implement: it gets the
    windowed diff's stream."""

    region_nop = ListenerBase.region_nop


def expected_stream(old: FlatView, new: FlatView, listener: MemoryListener) -> list[str]:
    """What the full diff delivers to ``listener`` (no nops), as (name, range) lines."""
    d = diff_views(old, new)
    resized = d.resized_old
    out = [
        f"region_del {r.addr:#x}+{r.size:#x} {r.region.name}"
        for r in d.removed
        if not (id(r) in resized and supports_resize(listener))
    ]
    for u in d.updates:
        r = u.new
        if u.kind == "nop":
            assert u.old is not None
            om, nm = u.old.dirty_log_mask, u.new.dirty_log_mask
            if nm & ~om:
                out.append(f"log_start {r.addr:#x}+{r.size:#x} {r.region.name}")
            if om & ~nm:
                out.append(f"log_stop {r.addr:#x}+{r.size:#x} {r.region.name}")
        else:
            out.append(f"region_add {r.addr:#x}+{r.size:#x} {r.region.name}")
    return out


def got_stream(rec: RecordingListener) -> list[str]:
    return [
        f"{e.name} {e.section.addr:#x}+{e.section.size:#x} {e.section.region.name}"
        for e in rec.events
        if e.section is not None
    ]


class IncrementalCommits(RuleBasedStateMachine):
    tree: Tree

    @initialize(data=st.data())
    def build(self, data: st.DataObject) -> None:
        self.tree = data.draw(trees(max_nodes=12))
        root = self.tree.root.region
        s = self.tree.system
        self.memory = AddressSpace(root, "memory")
        # a second space whose root resolves to the same region: they share one view
        self.shared = AddressSpace(s.alias("whole", root, 0, root.size), "shared")
        self.quiet = QuietRecorder()
        self.memory.add_listener(self.quiet)
        self.quiet.clear()
        # the KVM listener plans only the changed windows; its twin plans everything
        self.kvm = KvmMemoryListener(SimVm(), self.memory)
        self.whole = KvmMemoryListener(SimVm(), self.memory)
        self.whole.windowed = False
        self.before = self.memory.flatview

    @rule(data=st.data())
    def transaction(self, data: st.DataObject) -> None:
        tree = self.tree
        self.before = self.memory.flatview
        self.quiet.clear()
        with tree.system.transaction():
            for _ in range(data.draw(st.integers(1, 4))):
                op = data.draw(st.sampled_from(OPS))
                node = data.draw(st.sampled_from(tree.nodes))
                n = data.draw(st.integers(0, 40))
                note(f"{op} {node.region.name} {n}")
                if op == "detach" and node.parented:
                    parent = next(
                        p for p in [tree.root, *tree.nodes] if node in [c[0] for c in p.children]
                    )
                    tree.del_child(parent, node)
                elif op == "attach" and not node.parented and node is not tree.root:
                    tree.add_child(tree.root, node, n, data.draw(st.integers(-2, 2)))
                else:
                    apply(tree, op, node, n)

    @invariant()
    def views_equal_the_full_render(self) -> None:
        if not hasattr(self, "tree"):
            return
        for space in (self.memory, self.shared):
            want = render(resolve_root(space.root)).ranges
            got = space.flatview.ranges
            assert got == want, (
                space.name,
                [r for r in got if r not in want],
                [r for r in want if r not in got],
            )
        assert self.memory.flatview is self.shared.flatview  # still shared

    @invariant()
    def windowed_plan_equals_the_whole_plan(self) -> None:
        if not hasattr(self, "tree"):
            return
        assert self.kvm.slots == self.whole.slots
        assert len(self.kvm.reports) == len(self.whole.reports)
        if self.kvm.reports:
            assert self.kvm.reports[-1].plan.ops == self.whole.reports[-1].plan.ops
        assert self.kvm.plan_now().ops == ()  # a fixed point: nothing left to do

    @invariant()
    def callbacks_equal_the_full_diff(self) -> None:
        if not hasattr(self, "tree") or not self.quiet.events:
            return
        assert got_stream(self.quiet) == expected_stream(
            self.before, self.memory.flatview, self.quiet
        )


IncrementalCommits.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_incremental_commits = IncrementalCommits.TestCase


def test_windowed_commit_renders_only_the_damaged_window() -> None:
    from flatview import MemorySystem

    s = MemorySystem()
    root = s.container("root", 2**64)
    regions = [s.ram(f"r{i}", UNIT) for i in range(200)]
    for i, r in enumerate(regions):
        root.add_subregion(i * 2 * UNIT, r)
    space = AddressSpace(root, "memory")
    before = space.flatview
    regions[100].set_enabled(False)
    after = space.flatview
    kept = sum(1 for a, b in zip(before.ranges, after.ranges, strict=False) if a is b)
    assert kept >= 99  # the ranges left of the window are the same objects
    assert after.ranges == render(root).ranges


def test_incremental_commits_with_every_container_indexed() -> None:
    """The same machine with the child index used for every container (it normally
    starts at 32 children, more than the generated trees have)."""
    import sys

    import pytest
    from hypothesis.stateful import run_state_machine_as_test

    region_module = sys.modules["flatview.region"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(region_module, "INDEXED", 0)
        run_state_machine_as_test(
            IncrementalCommits,
            settings=settings(
                max_examples=100,
                stateful_step_count=10,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )


def test_spaces_sharing_a_root_share_one_view_and_only_listening_ones_are_told() -> None:
    """Many spaces whose roots alias one region: one view object for all, published
    once per commit; the one space with a listener gets the exact stream; a space
    whose root stops resolving alike leaves the group with its own view."""
    from flatview import MemorySystem

    s = MemorySystem()
    system = s.container("system", 1 << 32)
    ram = s.ram("ram", 0x10000)
    system.add_subregion(0, ram)
    memory = AddressSpace(system, "memory")
    bus = [AddressSpace(s.alias(f"bm{k}", system, 0, 1 << 32), f"bm{k}") for k in range(6)]
    rec = QuietRecorder()
    bus[3].add_listener(rec)
    rec.events.clear()
    before = memory.flatview
    bar = s.ram_device("bar", 0x1000)
    system.add_subregion(0x8000_0000, bar)
    views = {id(sp.flatview) for sp in [memory, *bus]}
    assert len(views) == 1 and memory.flatview is not before
    assert memory.flatview.ranges == render(system).ranges
    assert got_stream(rec) == expected_stream(before, memory.flatview, rec)

    # bm5 now shows only the low half of system memory: its own resolution, its own view
    bus[5].root.set_size(0x8000_0000)
    assert bus[5].flatview is not memory.flatview
    assert bus[5].flatview.ranges == render(bus[5].root).ranges
    rec.events.clear()
    before = memory.flatview
    bar.set_address(0x9000_0000)
    assert {id(sp.flatview) for sp in [memory, *bus[:5]]} == {id(memory.flatview)}
    assert memory.flatview.ranges == render(system).ranges
    assert bus[5].flatview.ranges == render(bus[5].root).ranges
    assert got_stream(rec) == expected_stream(before, memory.flatview, rec)
