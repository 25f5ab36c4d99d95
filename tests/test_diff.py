"""The callback stream of a commit, replayed on the old view, yields the new view."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flatview import AddressSpace, DirtyLogClient, FlatRange, FlatView, diff_views
from flatview.section import MemoryRegionSection
from listeners import RecordingListener, ResizeRecordingListener
from tests.tree_gen import UNIT, Node, Tree, trees

Key = tuple[int, int, int, int, bool, bool, bool, bool]


def key(r: FlatRange | MemoryRegionSection) -> Key:
    return (
        r.addr,
        r.size,
        id(r.region),
        r.offset_in_region,
        r.readonly,
        r.romd_mode,
        r.nonvolatile,
        r.unmergeable,
    )


def replay(view: FlatView, rec: RecordingListener) -> dict[Key, int]:
    state = {key(r): r.dirty_log_mask for r in view}
    seen_add = False
    for e in rec.events:
        if e.name == "region_del":
            assert e.section is not None
            assert not seen_add, "a region_del came after a region_add"
            assert key(e.section) in state, f"del of a range not mapped: {e.format()}"
            del state[key(e.section)]
        elif e.name == "region_add":
            assert e.section is not None
            seen_add = True
            k = key(e.section)
            for other in state:
                assert other[0] + other[1] <= k[0] or k[0] + k[1] <= other[0], "add overlaps"
            state[k] = e.section.dirty_log_mask
        elif e.name == "region_resize":
            assert e.section is not None and e.old is not None
            seen_add = True
            assert key(e.old) in state
            del state[key(e.old)]
            state[key(e.section)] = e.section.dirty_log_mask
        elif e.name == "region_nop":
            assert e.section is not None and key(e.section) in state
        elif e.name in ("log_start", "log_stop"):
            assert e.section is not None
            k = key(e.section)
            # QEMU passes (old, new) to both calls when bits are added and removed
            assert state[k] in (e.old_mask, e.new_mask)
            if e.name == "log_start":
                assert e.new_mask & ~e.old_mask
            else:
                assert e.old_mask & ~e.new_mask
            state[k] = e.new_mask
    return state


@st.composite
def mutations(draw: st.DrawFn, tree: Tree) -> list[tuple[str, Node, int]]:
    ops = []
    for _ in range(draw(st.integers(1, 4))):
        node = draw(st.sampled_from(tree.nodes))
        op = draw(st.sampled_from(("enable", "readonly", "move", "alias_offset", "log", "size")))
        ops.append((op, node, draw(st.integers(0, 40))))
    return ops


def apply(tree: Tree, op: str, node: Node, n: int) -> None:
    mr = node.region
    if op == "enable":
        node.enabled = not node.enabled
        mr.set_enabled(node.enabled)
    elif op == "readonly" and node.kind in ("alias", "ram", "container"):
        node.readonly = not node.readonly
        mr.set_readonly(node.readonly)
    elif op == "move" and mr.parent is not None:
        mr.set_address(n * UNIT)
    elif (
        op == "alias_offset"
        and node.target is not None
        and node.target.size_units >= node.size_units
    ):
        off = n % (node.target.size_units - node.size_units + 1)
        node.alias_offset_units = off
        mr.set_alias_offset(off * UNIT)
    elif op == "log" and mr.has_ram_block:
        if mr.log_mask:
            mr.log_stop(DirtyLogClient.VGA)
        else:
            mr.log_start(DirtyLogClient.VGA)
    elif op == "size" and node.kind in ("container", "mmio"):
        # never below a window an alias shows (refused: RegionError)
        floor = max((a.alias_offset + a.size for a in mr.aliases), default=UNIT) // UNIT
        node.size_units = max(1 + n % 24, floor)
        mr.set_size(node.size_units * UNIT)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_callback_stream_replays_old_view_into_new(data: st.DataObject) -> None:
    tree = data.draw(trees())
    space = AddressSpace(tree.root.region, "memory")
    plain = RecordingListener(priority=10)
    resizer = ResizeRecordingListener(priority=5)
    space.add_listener(plain)
    space.add_listener(resizer)
    for _ in range(3):
        ops = data.draw(mutations(tree))
        old = space.flatview
        plain.clear()
        resizer.clear()
        with tree.system.transaction():
            for op in ops:
                apply(tree, *op)
                if data.draw(st.integers(0, 9)) == 0:
                    if tree.system.global_dirty_log:
                        tree.system.global_log_stop()
                    else:
                        tree.system.global_log_start()
        new = space.flatview
        want = {key(r): r.dirty_log_mask for r in new}
        for rec in (plain, resizer):
            names = [n for n in rec.names() if not n.startswith("log_global")]
            if names:
                assert names[0] == "begin" and names[-1] == "commit"
                assert names.count("begin") == names.count("commit") == 1
            assert replay(old, rec) == want
        # nop exactly for ranges with the same mapping in both views
        same = {key(r) for r in old} & {key(r) for r in new}
        nops = {key(e.section) for e in plain.events if e.name == "region_nop" and e.section}
        if plain.events:
            assert nops == same
        # plain listeners never see region_resize
        assert "region_resize" not in plain.names()


def test_diff_pairs_size_only_change_as_resize() -> None:
    from flatview import MemorySystem

    s = MemorySystem()
    root = s.container("root", 2**64)
    ram = s.ram("ram", 0x4000, max_size=0x10000)
    root.add_subregion(0x10000, ram)
    space = AddressSpace(root, "memory")
    plain, resizer = RecordingListener(), ResizeRecordingListener()
    space.add_listener(plain)
    space.add_listener(resizer)
    plain.clear()
    resizer.clear()
    old = space.flatview
    ram.set_size(0x8000)
    d = diff_views(old, space.flatview)
    assert [u.kind for u in d.updates] == ["resize"]
    assert plain.names() == ["begin", "region_del", "region_add", "commit"]
    assert resizer.names() == ["begin", "region_resize", "commit"]
    ev = resizer.events[1]
    assert ev.old is not None and ev.section is not None
    assert (ev.old.size, ev.section.size) == (0x4000, 0x8000)
    assert ram.ram_block is not None and ram.ram_block.used_length == 0x8000
