"""Rendering equals a brute-force per-address walk of the tree (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from flatview import AddressSpace, FlatView
from tests.tree_gen import SCAN_UNITS, UNIT, Tree, expected_ranges, trees


def view_tuples(view: FlatView) -> list[tuple[int, int, str, int, bool, bool, bool]]:
    return [
        (
            r.addr,
            r.size,
            r.region.name,
            r.offset_in_region,
            r.readonly,
            r.nonvolatile,
            r.unmergeable,
        )
        for r in view
    ]


def check_well_formed(view: FlatView) -> None:
    prev_end = -1
    for r in view:
        assert r.size > 0
        assert r.addr >= prev_end, "ranges overlap or are unsorted"
        prev_end = r.end
    for a, b in zip(view.ranges, view.ranges[1:], strict=False):
        assert not a.can_merge(b), f"{a} and {b} should have been merged"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees())
def test_render_matches_brute_force_oracle(tree: Tree) -> None:
    space = AddressSpace(tree.root.region, "memory")
    view = space.flatview
    check_well_formed(view)
    assert all(r.end <= SCAN_UNITS * UNIT for r in view)
    assert view_tuples(view) == expected_ranges(tree)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees())
def test_lookup_agrees_with_ranges(tree: Tree) -> None:
    view = AddressSpace(tree.root.region, "memory").flatview
    for u in range(0, 200):
        addr = u * UNIT + 5
        hit = view.lookup(addr)
        inside = [r for r in view if r.addr <= addr < r.end]
        assert (hit is None and not inside) or (hit is not None and inside == [hit])
