"""The chunked FlatView against a plain list: splices, index lookups and address
lookups agree after any sequence of edits (chunk size shrunk so edits cross chunks)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flatview import FlatRange, FlatView, MemorySystem
from flatview import flatrange as flatrange_module

_S = MemorySystem()
_MR = _S.mmio("r", 1 << 40)


def _ranges(starts: list[int]) -> list[FlatRange]:
    return [FlatRange(a, 1, _MR, a) for a in starts]


edit_lists = st.lists(
    st.tuples(st.integers(0, 60), st.integers(0, 8), st.integers(0, 5)), max_size=5
)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flatrange_module, "CHUNK", 4)


@given(st.integers(0, 60), st.lists(edit_lists, max_size=6))
@settings(max_examples=300, deadline=None)
def test_splices_equal_the_same_edits_on_a_list(
    n: int, rounds: list[list[tuple[int, int, int]]]
) -> None:
    model = _ranges(list(range(0, n << 20, 1 << 20)))
    view = FlatView(model)
    for round_ in rounds:
        edits: list[tuple[int, int, list[FlatRange]]] = []
        at = floor = 0
        for gap, length, inserted in round_:
            a = min(at + gap, len(model))
            b = min(a + length, len(model))
            base = max(model[a - 1].addr if a > 0 else 0, floor)  # after earlier inserts
            limit = model[b].addr if b < len(model) else base + (1 << 20)
            step = (limit - base) // (inserted + 2)
            new = _ranges([base + step * (k + 1) for k in range(inserted) if step > 1])
            edits.append((a, b, new))
            at = b
            floor = new[-1].addr if new else floor
        for a, b, new in reversed(edits):
            model[a:b] = new
        view = view.spliced(edits)
        assert list(view) == model
        assert len(view) == len(model)
        assert view.ranges == tuple(model)
        assert view == FlatView(model)
        for i, r in enumerate(model):
            assert view.at(i) is r
            assert view.lookup(r.addr) is r
            assert view.bisect_right(r.addr) == i + 1
            assert view.bisect_left(r.addr) == i
        assert view.slice(1, len(model) - 1) == model[1:-1]
        assert len(view._chunks) <= max(1, len(model) // 2 + 1)  # chunks stay large
