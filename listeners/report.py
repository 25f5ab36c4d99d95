"""What a commit did, in words: change classes, QEMU's figures, trace lines.

Computed only when asked (the CLI, the demo, benchmarks, logs), from a
:class:`Batch`: the slot mappings a commit's callbacks removed and added, and
those whose dirty logging alone changed.  The planner never needs any of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs

from listeners.planner import MappingIndex, Plan, SlotOp, exact_key, overlap
from listeners.slot_layout import SlotMapping

ClassKind = Literal["grow", "shrink", "split", "merge", "move", "flags", "add", "remove", "remap"]


@attrs.frozen(slots=True)
class ChangeClass:
    kind: ClassKind
    gpa: int
    size: int


@attrs.frozen
class Batch:
    """The slot-level change of one commit."""

    removed: tuple[SlotMapping, ...] = ()
    added: tuple[SlotMapping, ...] = ()
    relogged: tuple[tuple[SlotMapping, SlotMapping], ...] = ()
    """(before, after) of mappings whose dirty-log flag alone changed."""

    @classmethod
    def of(
        cls,
        removed: Sequence[SlotMapping],
        added: Sequence[SlotMapping],
        relogged: Sequence[tuple[SlotMapping, SlotMapping]] = (),
    ) -> Batch:
        """Cancel removed/added pairs that map alike (apart from dirty logging)."""
        gone = {exact_key(m): m for m in removed}
        new = {exact_key(m): m for m in added}
        flips = list(relogged)
        for k in gone.keys() & new.keys():
            if gone[k].flags != new[k].flags:
                flips.append((gone[k], new[k]))
        return cls(
            tuple(m for k, m in gone.items() if k not in new),
            tuple(m for k, m in new.items() if k not in gone),
            tuple(sorted(flips, key=lambda p: p[0].gpa)),
        )

    @classmethod
    def between(cls, previous: Sequence[SlotMapping], desired: Sequence[SlotMapping]) -> Batch:
        """The batch that turns one whole layout into another."""
        return cls.of(previous, desired)


@attrs.frozen
class Summary:
    classes: tuple[ChangeClass, ...]
    qemu_ioctls: int
    """ioctls QEMU's listener (one slot per flat range, exact-match deletes) would issue."""
    qemu_unmapped_bytes: int
    """Bytes QEMU's listener would unmap although they are mapped after the commit."""


def summarize(batch: Batch) -> Summary:
    ioctls, unmapped = qemu_figures(batch)
    return Summary(classify(batch), ioctls, unmapped)


def qemu_figures(batch: Batch) -> tuple[int, int]:
    """(ioctls, bytes unmapped though mapped after) of QEMU's one-slot-per-range listener:
    one ioctl per removed, added and re-logged range; a removed range's bytes that
    an added one maps again were unmapped in between."""
    added = MappingIndex(batch.added)
    unmapped = sum(
        overlap(m.gpa, m.end, a.gpa, a.end)
        for m in batch.removed
        for a in added.overlapping(m.gpa, m.end)
    )
    return len(batch.removed) + len(batch.added) + len(batch.relogged), unmapped


def classify(batch: Batch) -> tuple[ChangeClass, ...]:
    """Name each connected change of a batch: grow, shrink, split, merge, move,
    flags (READONLY or dirty logging toggled on the same bytes), add, remove, or
    remap (overlapping changes of any other shape)."""
    out = [ChangeClass("flags", old.gpa, old.size) for old, _ in batch.relogged]
    removed = list(batch.removed)
    added = list(batch.added)
    # same range and bytes, only READONLY toggled: a flags change too
    by_range = {(m.gpa, m.size, m.block, m.delta): m for m in added}
    twins: set[int] = set()
    kept_removed = []
    for m in removed:
        twin = by_range.get((m.gpa, m.size, m.block, m.delta))
        if twin is not None and id(twin) not in twins:
            out.append(ChangeClass("flags", m.gpa, m.size))
            twins.add(id(twin))
        else:
            kept_removed.append(m)
    removed = kept_removed
    added = [a for a in added if id(a) not in twins]
    added_at = MappingIndex(added)
    by_bytes: dict[tuple[int, int, int], list[SlotMapping]] = {}
    for ad in added:
        by_bytes.setdefault((ad.size, ad.hva, ad.block), []).append(ad)
    for m in list(removed):  # moves: same bytes and size, elsewhere, old place gone
        candidates = by_bytes.get((m.size, m.hva, m.block), [])
        mv = next((c for c in candidates if c.gpa != m.gpa and c in added), None)
        if mv is not None and not added_at.overlapping(m.gpa, m.end):
            out.append(ChangeClass("move", mv.gpa, mv.size))
            removed.remove(m)
            added.remove(mv)
    # connected components by gpa overlap
    items = sorted([(m.gpa, m.end, 0, m) for m in removed] + [(m.gpa, m.end, 1, m) for m in added])
    comps: list[list[tuple[int, int, int, SlotMapping]]] = []
    hi = -1
    for it in items:
        if comps and it[0] < hi:
            comps[-1].append(it)
            hi = max(hi, it[1])
        else:
            comps.append([it])
            hi = it[1]
    for comp in comps:
        olds = [m for _, _, side, m in comp if side == 0]
        news = [m for _, _, side, m in comp if side == 1]
        lo = min(m.gpa for _, _, _, m in comp)
        end = max(m.end for _, _, _, m in comp)
        kind: ClassKind
        if not olds:
            kind = "add"
        elif not news:
            kind = "remove"
        elif len(olds) == 1 and len(news) == 1 and olds[0].same_bytes(news[0]):
            o, n = olds[0], news[0]
            if n.gpa <= o.gpa and n.end >= o.end:
                kind = "grow"
            elif n.gpa >= o.gpa and n.end <= o.end:
                kind = "shrink"
            else:
                kind = "remap"
        elif len(olds) == 1 and all(olds[0].gpa <= n.gpa and n.end <= olds[0].end for n in news):
            kind = "split"
        elif len(news) == 1 and all(news[0].gpa <= o.gpa and o.end <= news[0].end for o in olds):
            kind = "merge"
        else:
            kind = "remap"
        out.append(ChangeClass(kind, lo, end - lo))
    return tuple(sorted(out, key=lambda c: (c.gpa, c.kind)))


def trace_line(op: SlotOp, as_id: int = 0, ret: int = 0) -> str:
    """One ioctl as QEMU 10 traces it (:meth:`SlotOp.trace`)."""
    return op.trace(as_id, ret)


def summary_line(plan: Plan, summary: Summary, paused: bool | None = None) -> str:
    """ioctls, remapped bytes, pause, and what QEMU's listener would have done."""
    pause = plan.needs_pause if paused is None else paused
    kinds = ",".join(c.kind for c in summary.classes) or "none"
    return (
        f"{kinds}: {plan.ioctls} ioctls ({plan.count('delete')} del, {plan.count('create')} "
        f"create, {plan.count('flags')} flags, {plan.count('move')} move), "
        f"remapped {plan.remapped_bytes:#x}, unchanged unmapped "
        f"{plan.unchanged_bytes_unmapped:#x}, pause {'yes' if pause else 'no'}; "
        f"QEMU-style: {summary.qemu_ioctls} ioctls, {summary.qemu_unmapped_bytes:#x} bytes "
        "unmapped"
    )
