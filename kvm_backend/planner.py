"""The commit planner: old slot table + new mappings -> the minimal ioctls.

A pure function (no I/O) so it can be tested without KVM.  Rules:

* a slot is deleted only when one of its bytes changes mapping (host address or
  READONLY); a slot whose bytes all stay mapped the same way is kept, even if the
  view merged it with neighbours (keeping two slots is free, merging costs a hole);
* a dirty-log change alone is a flags-only ioctl on the surviving slot;
* a slot whose old range is entirely gone and whose (size, host address, flags)
  reappear at a new gpa is one MOVE;
* what is left is created, contiguous pieces (same block, gpa and host address
  contiguous, equal flags) as one slot, cut at the tree's boundaries (where a
  future commit may change the mapping) within the slot budget;
* an op is *protected* when it unmaps or maps a byte that is mapped both before
  and after the commit: those ops need the vCPUs paused (or optimistic repair).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Collection, Sequence
from typing import Literal

import attrs

from flatview.errors import FlatviewError
from kvm_backend.abi import KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY
from kvm_backend.slot_layout import PAGE, SlotMapping

OpKind = Literal["create", "delete", "flags", "move"]
ClassKind = Literal["grow", "shrink", "split", "merge", "move", "flags", "add", "remove", "remap"]


class PlanError(FlatviewError):
    """The new layout cannot be expressed in KVM slots (e.g. too many slots)."""


@attrs.frozen(slots=True)
class Slot:
    """A live slot: its id inside the KVM address space and what it maps."""

    slot: int
    mapping: SlotMapping


@attrs.frozen(slots=True)
class SlotOp:
    """One KVM_SET_USER_MEMORY_REGION call.

    ``mapping`` is what the slot maps after the op (for a delete: what it mapped);
    ``old`` what it mapped before (flags, move, delete).  ``harvest``: read the
    slot's dirty bitmap just before the op (the op would free it).
    """

    op: OpKind
    slot: int
    mapping: SlotMapping
    old: SlotMapping | None = None
    protected: bool = False
    harvest: bool = False

    def ioctl_args(self) -> tuple[int, int, int, int]:
        """(flags, gpa, size, hva) as passed to the kernel; a delete has size 0."""
        m = self.mapping
        if self.op == "delete":
            return (0, m.gpa, 0, m.hva)
        return (m.flags, m.gpa, m.size, m.hva)


@attrs.frozen(slots=True)
class ChangeClass:
    kind: ClassKind
    gpa: int
    size: int


@attrs.frozen(slots=True)
class PlanCaps:
    """What the planner may use: the kernel's slot limit, an optional maximum slot
    size (bigger ranges are split), and the budget of slots that boundary cuts may
    bring the table up to."""

    nr_memslots: int = 32764
    max_slot_size: int | None = None
    slot_budget: int = 512


@attrs.frozen
class Plan:
    ops: tuple[SlotOp, ...]
    slots_after: tuple[Slot, ...]
    remapped_bytes: int
    """Bytes mapped before and after, differently, that pass through a hole."""
    unchanged_bytes_unmapped: int
    """Bytes mapped identically before and after that sit in a deleted slot."""
    classes: tuple[ChangeClass, ...] = ()
    qemu_ioctls: int = 0
    """ioctls QEMU's listener (one slot per flat range, exact-match deletes) would issue."""
    qemu_unmapped_bytes: int = 0
    """Bytes QEMU's listener would unmap although they are mapped after the commit."""

    @property
    def ioctls(self) -> int:
        return len(self.ops)

    @property
    def needs_pause(self) -> bool:
        return any(op.protected for op in self.ops)

    def count(self, kind: OpKind) -> int:
        return sum(1 for op in self.ops if op.op == kind)


class _Index:
    """Mappings sorted by gpa with an overlap query."""

    def __init__(self, items: Sequence[SlotMapping]) -> None:
        self.items = sorted(items, key=lambda m: m.gpa)
        self.starts = [m.gpa for m in self.items]

    def overlapping(self, lo: int, hi: int) -> list[SlotMapping]:
        items = self.items
        i = max(bisect.bisect_right(self.starts, lo) - 1, 0)
        out = []
        while i < len(items):
            m = items[i]
            if m.gpa >= hi:
                break
            if m.end > lo:
                out.append(m)
            i += 1
        return out


def _overlap(a_lo: int, a_hi: int, b_lo: int, b_hi: int) -> int:
    return max(0, min(a_hi, b_hi) - max(a_lo, b_lo))


def _subtract(pieces: list[SlotMapping], holes: list[tuple[int, int]]) -> list[SlotMapping]:
    """``pieces`` minus the gpa intervals in ``holes`` (a sweep over both, sorted)."""
    out: list[SlotMapping] = []
    holes = sorted(holes)
    starts = [lo for lo, _ in holes]
    for p in sorted(pieces, key=lambda m: m.gpa):
        cur = p.gpa
        i = max(bisect.bisect_right(starts, p.gpa) - 1, 0)
        while i < len(holes) and holes[i][0] < p.end:
            lo, hi = holes[i]
            i += 1
            if hi <= cur:
                continue
            if lo > cur:
                out.append(p.piece(cur, lo))
            cur = max(cur, hi)
        if cur < p.end:
            out.append(p.piece(cur, p.end))
    return out


def _coalesce(pieces: list[SlotMapping]) -> list[SlotMapping]:
    out: list[SlotMapping] = []
    for p in sorted(pieces, key=lambda m: m.gpa):
        if out:
            q = out[-1]
            if q.end == p.gpa and q.block == p.block and q.delta == p.delta and q.flags == p.flags:
                out[-1] = attrs.evolve(q, size=p.end - q.gpa)
                continue
        out.append(p)
    return out


def _cut(
    pieces: list[SlotMapping], cuts: Collection[int], max_size: int | None
) -> list[SlotMapping]:
    points = sorted(c for c in cuts if c % PAGE == 0)
    out: list[SlotMapping] = []
    for p in pieces:
        lo = p.gpa
        i = bisect.bisect_right(points, lo)
        edges = [lo]
        while i < len(points) and points[i] < p.end:
            edges.append(points[i])
            i += 1
        edges.append(p.end)
        for a, b in itertools.pairwise(edges):
            if max_size:
                for s in range(a, b, max_size):
                    out.append(p.piece(s, min(b, s + max_size)))
            else:
                out.append(p.piece(a, b))
    return out


def _exact(m: SlotMapping) -> tuple[int, int, int, int, int]:
    return (m.gpa, m.size, m.hva, m.block, m.flags & KVM_MEM_READONLY)


def qemu_figures(
    previous: Sequence[SlotMapping], desired: Sequence[SlotMapping]
) -> tuple[int, int]:
    """(ioctls, bytes unmapped though mapped after) of QEMU's one-slot-per-range listener."""
    prev = {_exact(m): m for m in previous}
    new = {_exact(m): m for m in desired}
    idx = _Index(desired)
    ioctls = 0
    unmapped = 0
    for key, m in prev.items():
        if key not in new:
            ioctls += 1
            unmapped += sum(
                _overlap(m.gpa, m.end, d.gpa, d.end) for d in idx.overlapping(m.gpa, m.end)
            )
        elif new[key].logging != m.logging:
            ioctls += 1
    ioctls += sum(1 for key in new if key not in prev)
    return ioctls, unmapped


def classify(
    previous: Sequence[SlotMapping], desired: Sequence[SlotMapping]
) -> tuple[ChangeClass, ...]:
    """Name each connected change between two layouts."""
    prev = {_exact(m): m for m in previous}
    new = {_exact(m): m for m in desired}
    out: list[ChangeClass] = []
    for key, m in prev.items():
        if key in new and new[key].flags != m.flags:
            out.append(ChangeClass("flags", m.gpa, m.size))
    removed = [m for k, m in prev.items() if k not in new]
    added = [m for k, m in new.items() if k not in prev]
    # same range and bytes, only READONLY toggled: a flags change too
    by_range = {(m.gpa, m.size, m.block, m.delta): m for m in added}
    twins = set()
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
    want = _Index(desired)
    by_bytes: dict[tuple[int, int, int], list[SlotMapping]] = {}
    for ad in added:
        by_bytes.setdefault((ad.size, ad.hva, ad.block), []).append(ad)
    for m in list(removed):  # moves: same bytes and size, elsewhere, old place gone
        candidates = by_bytes.get((m.size, m.hva, m.block), [])
        mv = next((c for c in candidates if c.gpa != m.gpa and c in added), None)
        if mv is not None and not want.overlapping(m.gpa, m.end):
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


def _triage(
    old: Sequence[Slot], want: _Index, desired: Sequence[SlotMapping], qemu_like: bool
) -> tuple[list[Slot], list[SlotOp], list[Slot]]:
    """Split the old slots into kept (with flags-only ops for dirty-log changes) and
    deleted: a slot is kept when every byte stays mapped the same way."""
    kept: list[Slot] = []
    flag_ops: list[SlotOp] = []
    deleted: list[Slot] = []
    exact_new = {_exact(m): m for m in desired} if qemu_like else {}
    for s in old:
        m = s.mapping
        if qemu_like:
            match = exact_new.get(_exact(m))
            keep = match is not None
            new_flags = match.flags if match is not None else m.flags
        else:
            cover = want.overlapping(m.gpa, m.end)
            covered = sum(_overlap(m.gpa, m.end, d.gpa, d.end) for d in cover)
            keep = (
                covered == m.size
                and all(d.same_bytes(m) for d in cover)
                and len({d.logging for d in cover}) == 1
            )
            new_flags = cover[0].flags if keep else m.flags
        if not keep:
            deleted.append(s)
            continue
        nm = m if new_flags == m.flags else attrs.evolve(m, flags=new_flags)
        if new_flags != m.flags:
            stops_logging = m.logging and not new_flags & KVM_MEM_LOG_DIRTY_PAGES
            flag_ops.append(SlotOp("flags", s.slot, nm, m, False, stops_logging))
        kept.append(Slot(s.slot, nm))
    return kept, flag_ops, deleted


def _match_moves(
    deleted: list[Slot], pieces: list[SlotMapping], want: _Index
) -> tuple[list[tuple[Slot, SlotMapping]], list[SlotMapping]]:
    """Deleted slots whose old range is gone and whose (size, hva, flags, block)
    reappear as a whole new piece become MOVEs; returns them and the other pieces."""
    moves: list[tuple[Slot, SlotMapping]] = []
    taken: set[int] = set()
    for s in deleted:
        m = s.mapping
        if not pieces or want.overlapping(m.gpa, m.end):
            continue
        key = (m.size, m.hva, m.flags, m.block)
        for i, r in enumerate(pieces):
            if i in taken or (r.size, r.hva, r.flags, r.block) != key:
                continue
            if any(
                o.slot != s.slot and _overlap(r.gpa, r.end, o.mapping.gpa, o.mapping.end)
                for o in deleted
            ):
                continue  # its destination is still occupied when the move runs
            taken.add(i)
            moves.append((s, r))
            break
    return moves, [r for i, r in enumerate(pieces) if i not in taken]


def plan(
    old: Sequence[Slot],
    desired: Sequence[SlotMapping],
    *,
    previous: Sequence[SlotMapping] | None = None,
    caps: PlanCaps | None = None,
    boundaries: Collection[int] = (),
    qemu_like: bool = False,
) -> Plan:
    """Plan the ioctls that turn the slot table ``old`` into one mapping ``desired``.

    ``previous``: the mappings of the last committed view (for the QEMU comparison
    and the change classes; defaults to the old slots).  ``boundaries``: where the
    region tree may cut a mapping later.  ``qemu_like``: plan as QEMU's listener does
    (one slot per flat range, delete every slot whose range changed), for comparison.
    """
    caps = caps or PlanCaps()
    want = _Index(desired)
    old_sorted = sorted(old, key=lambda s: s.mapping.gpa)
    kept, flag_ops, deleted = _triage(old_sorted, want, desired, qemu_like)

    remaining = _subtract(list(want.items), [(s.mapping.gpa, s.mapping.end) for s in kept])
    if not qemu_like:
        remaining = _coalesce(remaining)

    # cut new pieces where the tree may change them later (within the budget)
    pieces = _cut(remaining, (), caps.max_slot_size)
    if boundaries and not qemu_like:
        cut = _cut(remaining, boundaries, caps.max_slot_size)
        if len(kept) + len(cut) <= min(caps.slot_budget, caps.nr_memslots):
            pieces = cut
    if len(kept) + len(pieces) > caps.nr_memslots:
        raise PlanError(
            f"layout needs {len(kept) + len(pieces)} slots, the kernel allows {caps.nr_memslots}"
        )
    moves, creates = ([], pieces) if qemu_like else _match_moves(deleted, pieces, want)
    moved_ids = {s.slot for s, _ in moves}

    used = {s.slot for s in kept} | moved_ids
    free = (i for i in range(caps.nr_memslots) if i not in used)
    create_slots = [Slot(next(free), c) for c in creates]

    # protection and the hole figures: bytes mapped both before and after
    old_ranges = _Index([s.mapping for s in old_sorted])
    remapped = unchanged = 0
    del_ops: list[SlotOp] = []
    for s in deleted:
        if s.slot in moved_ids:
            continue
        m = s.mapping
        after = want.overlapping(m.gpa, m.end)
        for d in after:
            n = _overlap(m.gpa, m.end, d.gpa, d.end)
            if d.same_bytes(m):
                unchanged += n
            else:
                remapped += n
        del_ops.append(SlotOp("delete", s.slot, m, m, bool(after), m.logging))
    move_ops = [
        SlotOp(
            "move",
            s.slot,
            r,
            s.mapping,
            any(o is not s.mapping for o in old_ranges.overlapping(r.gpa, r.end)),
        )
        for s, r in moves
    ]
    create_ops = [
        SlotOp(
            "create",
            c.slot,
            c.mapping,
            None,
            bool(old_ranges.overlapping(c.mapping.gpa, c.mapping.end)),
        )
        for c in create_slots
    ]

    def only(ops: list[SlotOp], protected: bool) -> list[SlotOp]:
        return [o for o in ops if o.protected == protected]

    ops = (
        flag_ops
        + only(del_ops, False)
        + only(del_ops, True)
        + only(move_ops, True)
        + only(create_ops, True)
        + only(move_ops, False)
        + only(create_ops, False)
    )
    after_slots = sorted(
        kept + [Slot(s.slot, r) for s, r in moves] + create_slots, key=lambda s: s.mapping.gpa
    )
    prev = list(previous) if previous is not None else [s.mapping for s in old_sorted]
    q_ioctls, q_unmapped = qemu_figures(prev, desired)
    return Plan(
        ops=tuple(ops),
        slots_after=tuple(after_slots),
        remapped_bytes=remapped,
        unchanged_bytes_unmapped=unchanged,
        classes=classify(prev, desired),
        qemu_ioctls=q_ioctls,
        qemu_unmapped_bytes=q_unmapped,
    )
