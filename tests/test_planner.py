"""The planner against a brute-force oracle: plans executed on SimVm, byte by byte."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flatview.hostmem import PAGE_SIZE as PAGE
from kvm_backend.memslot import Memslot
from kvm_backend.sim import SimVm
from listeners.planner import Plan, PlanCaps, Slot, plan
from listeners.report import Batch, summarize
from listeners.slot_layout import SlotMapping

PAGES = 64
BASE_GPA = 0x100000
BLOCK_HVA = {1: 0x7F0000000000, 2: 0x7F1000000000, 3: 0x7F2000000000}


@st.composite
def layouts(draw: st.DrawFn) -> list[SlotMapping]:
    """Non-overlapping mappings over PAGES pages: runs of one block at one offset."""
    out: list[SlotMapping] = []
    p = 0
    while p < PAGES:
        n = draw(st.integers(1, 16))
        n = min(n, PAGES - p)
        if draw(st.integers(0, 3)) > 0:
            block = draw(st.sampled_from(sorted(BLOCK_HVA)))
            shift = draw(st.sampled_from([0, 0, 0, 4, 8]))  # offset in block (pages)
            off = (p + shift) * PAGE
            flags = draw(st.sampled_from([0, 0, 0, 1, 2, 3]))
            out.append(
                SlotMapping(
                    BASE_GPA + p * PAGE, n * PAGE, BLOCK_HVA[block] + off, flags, block, off
                )
            )
        p += n
    return out


def mutate(draw: Callable[..., Any], layout: list[SlotMapping]) -> list[SlotMapping]:
    """A new layout sharing most bytes with ``layout`` (the realistic case)."""
    if draw(st.booleans()):
        fresh: list[SlotMapping] = draw(layouts())
        return fresh
    out = []
    for m in layout:
        k = draw(st.integers(0, 5))
        if k == 0:
            continue  # removed
        if k == 1 and m.size > PAGE:  # split with a flag change in the middle part
            cut = m.gpa + draw(st.integers(1, m.size // PAGE - 1)) * PAGE
            out.append(m.piece(m.gpa, cut))
            tail = m.piece(cut, m.end)
            out.append(
                SlotMapping(
                    tail.gpa,
                    tail.size,
                    tail.hva,
                    tail.flags ^ draw(st.sampled_from([1, 2, 3])),
                    tail.block,
                    tail.block_offset,
                )
            )
            continue
        if k == 2:
            out.append(SlotMapping(m.gpa, m.size, m.hva, m.flags ^ 1, m.block, m.block_offset))
            continue
        out.append(m)
    return out


def page_map(mappings: list[SlotMapping]) -> dict[int, tuple[int, int, int]]:
    """gpa page -> (block, hva, flags) for every mapped page."""
    out = {}
    for m in mappings:
        for g in range(m.gpa, m.end, PAGE):
            out[g] = (m.block, m.hva + (g - m.gpa), m.flags)
    return out


def kinds(before: list[SlotMapping], after: list[SlotMapping]) -> list[str]:
    return [c.kind for c in summarize(Batch.between(before, after)).classes]


def load(vm: SimVm, slots: tuple[Slot, ...] | list[Slot]) -> None:
    for s in slots:
        m = s.mapping
        vm.set_user_memory_region(s.slot, m.flags, m.gpa, m.size, m.hva)


def execute(vm: SimVm, p: Plan) -> list[int]:
    """Apply the plan; returns the timeline instant after each op."""
    instants = []
    for op in p.ops:
        vm.set_user_memory_region(op.slot, *op.ioctl_args())
        instants.append(vm.timeline.now)
    return instants


def as_table(slots: tuple[Slot, ...]) -> dict[int, Memslot]:
    return {
        s.slot: Memslot(s.slot, s.mapping.flags, s.mapping.gpa, s.mapping.size, s.mapping.hva)
        for s in slots
    }


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_plan_executes_on_sim_and_matches_the_byte_oracle(data: st.DataObject) -> None:
    before = data.draw(layouts())
    after = mutate(data.draw, before)
    cuts = data.draw(st.sets(st.integers(0, PAGES).map(lambda p: BASE_GPA + p * PAGE), max_size=12))
    caps = PlanCaps(nr_memslots=200, slot_budget=data.draw(st.sampled_from([8, 200])))
    old = plan([], before, caps=caps, boundaries=cuts).slots_after
    vm = SimVm()
    load(vm, old)
    t0 = vm.timeline.now
    p = plan(list(old), after, caps=caps, boundaries=cuts)
    instants = execute(vm, p)
    # the slot table is exactly what the plan says, and it maps exactly `after`
    assert vm.slots() == as_table(p.slots_after)
    assert page_map([s.mapping for s in p.slots_after]) == page_map(after)
    # every slot's host range lies in its block's range (page offsets below 2 * PAGES)
    for s in p.slots_after:
        m = s.mapping
        assert (
            BLOCK_HVA[m.block] <= m.hva and m.hva + m.size <= BLOCK_HVA[m.block] + 2 * PAGES * PAGE
        )
    # minimal deletes: each deleted slot holds a byte whose mapping changes
    was, now = page_map(before), page_map(after)
    for op in p.ops:
        if op.op == "delete":
            m = op.mapping
            changed = [g for g in range(m.gpa, m.end, PAGE) if now.get(g) != was.get(g)]
            assert changed, f"slot {op.slot} deleted without a changed byte"
    # the sim's timeline agrees with the plan's figures
    holes = vm.timeline.holes(t0)
    assert sum(h.size for h in holes if h.same_mapping) == p.unchanged_bytes_unmapped
    assert sum(h.size for h in holes if not h.same_mapping) == p.remapped_bytes
    # holes happen only inside the protected ops: nothing to protect => no pause
    if p.remapped_bytes + p.unchanged_bytes_unmapped == 0:
        assert not p.needs_pause
    both = [g for g in was if g in now]
    for op, instant in zip(p.ops, instants, strict=True):
        if not op.protected:
            assert all(vm.timeline.mapping_at(instant, g) is not None for g in both), op
    # flags-only when only dirty logging changed
    for op in p.ops:
        if op.op == "flags":
            assert op.old is not None
            assert (op.old.flags ^ op.mapping.flags) == 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_qemu_like_plan_is_valid_and_never_cheaper_in_holes(data: st.DataObject) -> None:
    before = data.draw(layouts())
    after = mutate(data.draw, before)
    old = plan([], before, qemu_like=True).slots_after
    vm = SimVm()
    load(vm, old)
    q = plan(list(old), after, qemu_like=True)
    execute(vm, q)
    assert page_map([s.mapping for s in q.slots_after]) == page_map(after)
    assert q.ioctls == summarize(Batch.between(before, after)).qemu_ioctls
    # with the range edges known as boundaries (a tree always provides them), our
    # layout never passes more bytes through a hole than QEMU's
    edges = {m.gpa for m in before + after} | {m.end for m in before + after}
    ours = plan(plan([], before, boundaries=edges).slots_after, after, boundaries=edges)
    assert ours.remapped_bytes + ours.unchanged_bytes_unmapped <= (
        q.remapped_bytes + q.unchanged_bytes_unmapped
    )


def test_grow_is_one_create_and_no_delete() -> None:
    m = SlotMapping(BASE_GPA, 4 * PAGE, BLOCK_HVA[1], 0, 1, 0)
    old = plan([], [m]).slots_after
    grown = SlotMapping(BASE_GPA, 8 * PAGE, BLOCK_HVA[1], 0, 1, 0)
    p = plan(list(old), [grown])
    assert [(o.op, o.mapping.gpa, o.mapping.size) for o in p.ops] == [
        ("create", BASE_GPA + 4 * PAGE, 4 * PAGE)
    ]
    assert not p.needs_pause and kinds([m], [grown]) == ["grow"]


def test_move_is_one_move_ioctl() -> None:
    m = SlotMapping(BASE_GPA, 4 * PAGE, BLOCK_HVA[1], 0, 1, 0)
    old = plan([], [m]).slots_after
    moved = SlotMapping(BASE_GPA + 32 * PAGE, 4 * PAGE, BLOCK_HVA[1], 0, 1, 0)
    p = plan(list(old), [moved])
    assert [(o.op, o.slot, o.mapping.gpa) for o in p.ops] == [("move", 0, moved.gpa)]
    assert not p.needs_pause and kinds([m], [moved]) == ["move"]


def test_dirty_log_toggle_is_flags_only() -> None:
    m = SlotMapping(BASE_GPA, 4 * PAGE, BLOCK_HVA[1], 0, 1, 0)
    old = plan([], [m]).slots_after
    p = plan(list(old), [SlotMapping(BASE_GPA, 4 * PAGE, BLOCK_HVA[1], 1, 1, 0)])
    assert [o.op for o in p.ops] == ["flags"] and not p.needs_pause
    back = plan(list(p.slots_after), [m])
    assert [(o.op, o.harvest) for o in back.ops] == [("flags", True)]


def test_merge_keeps_both_slots_without_an_ioctl() -> None:
    a = SlotMapping(BASE_GPA, 4 * PAGE, BLOCK_HVA[1], 0, 1, 0)
    b = SlotMapping(BASE_GPA + 4 * PAGE, 4 * PAGE, BLOCK_HVA[1] + 4 * PAGE, 0, 1, 4 * PAGE)
    old = plan([], [a, b], boundaries={BASE_GPA + 4 * PAGE}).slots_after
    assert len(old) == 2
    merged = SlotMapping(BASE_GPA, 8 * PAGE, BLOCK_HVA[1], 0, 1, 0)
    p = plan(list(old), [merged])
    assert p.ops == () and summarize(Batch.between([a, b], [merged])).qemu_ioctls == 3


def test_split_of_an_uncut_slot_reports_the_unchanged_bytes_it_unmaps() -> None:
    whole = SlotMapping(BASE_GPA, 8 * PAGE, BLOCK_HVA[1], 0, 1, 0)
    old = plan([], [whole]).slots_after
    ro = SlotMapping(BASE_GPA + 4 * PAGE, 4 * PAGE, BLOCK_HVA[1] + 4 * PAGE, 2, 1, 4 * PAGE)
    after = [whole.piece(BASE_GPA, BASE_GPA + 4 * PAGE), ro]
    p = plan(list(old), after)
    assert p.unchanged_bytes_unmapped == 4 * PAGE and p.remapped_bytes == 4 * PAGE
    assert p.needs_pause and kinds([whole], after) == ["split"]
