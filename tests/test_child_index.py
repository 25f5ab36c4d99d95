"""The child index against a brute-force oracle: after any sequence of adds,
removals, moves and resizes, a window finds exactly the children that meet it,
in the container's own render order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from flatview import MemorySystem

SIZE = 0x10000

ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "del", "move", "resize", "toggle", "find"]),
        st.integers(0, 39),  # which child
        st.integers(0, SIZE // 0x100 - 1),  # an offset, in 0x100 units
        st.integers(1, 16),  # a size, in 0x100 units
        st.integers(-1, 1),  # a priority
    ),
    max_size=80,
)


@given(ops)
@settings(max_examples=300, deadline=None)
def test_windowed_lookup_finds_exactly_the_children_that_meet_the_window(
    steps: list[tuple[str, int, int, int, int]],
) -> None:
    s = MemorySystem()
    parent = s.container("parent", SIZE)
    kids = [s.mmio(f"c{k}", 0x100) for k in range(40)]
    for k, kid in enumerate(kids[:35]):  # more than INDEXED: the index is used
        parent.add_subregion((k * 0x380) % (SIZE - 0x100), kid, priority=k % 3 - 1)
    for op, k, off, size, prio in steps:
        kid = kids[k]
        off *= 0x100
        size *= 0x100
        if op == "add" and kid.parent is None and off + kid.size <= SIZE:
            parent.add_subregion(off, kid, priority=prio)
        elif op == "del" and kid.parent is parent:
            parent.del_subregion(kid)
        elif op == "move" and kid.parent is parent and off + kid.size <= SIZE:
            kid.set_address(off)
        elif op == "resize" and kid.parent is parent and kid.addr + size <= SIZE:
            kid.set_size(size)
        elif op == "toggle":
            kid.set_enabled(not kid.enabled)
        lo, hi = off, min(off + size * 4, SIZE)
        # the index may return more (then the caller clips), never fewer or out of order
        found = [c for c in parent._children_in(lo, hi) if c.addr < hi and c.addr + c.size > lo]
        expect = [c for c in parent.subregions if c.addr < hi and c.addr + c.size > lo]
        assert [c.name for c in found] == [c.name for c in expect]
        # the index of enabled children: the same, less the disabled ones
        live = [c for c in parent._enabled_children_in(lo, hi) if c.enabled and c in expect]
        assert [c.name for c in live] == [c.name for c in expect if c.enabled]


def test_children_found_by_the_index_come_in_render_order() -> None:
    s = MemorySystem()
    parent = s.container("parent", SIZE)
    for k in range(40):
        parent.add_subregion(0x100 * k, s.mmio(f"low{k}", 0x100), priority=0)
    high = s.mmio("high", 0x100)
    newer = s.mmio("newer", 0x100)
    parent.add_subregion(0x200, high, priority=1)
    parent.add_subregion(0x200, newer, priority=0)
    names = [c.name for c in parent._children_in(0x200, 0x300)]
    assert names == ["high", "newer", "low2"]
