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

Op order, and why it is the atomicity guarantee:

1. flags-only ops first: they change no mapping (a dirty-log toggle) and never
   overlap another op's range, so they are safe anywhere; done first, a logging
   slot's bitmap is harvested before anything else touches it;
2. unprotected deletes: bytes that are unmapped after the commit anyway — the
   guest may see them vanish at any point;
3. protected deletes, then protected moves, then protected creates: the only
   window in which bytes that stay mapped are missing.  Kept contiguous, so the
   caller pauses the vCPUs (or opens the optimistic repair window) exactly once,
   around this run and nothing else; deletes come before creates because KVM
   refuses overlapping slots (EEXIST), and moves before creates because a move's
   destination is free only once the deletes ran;
4. unprotected moves and creates last: bytes that were unmapped before — the
   guest cannot have relied on them, and creating them after everything else
   means no slot ever overlaps another while the vCPUs run.

Reporting (change classes, what QEMU's listener would have done, trace lines) is
not the planner's business: :mod:`listeners.report` computes it when asked.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Collection, Container, Iterable, Sequence
from typing import Literal

import attrs

from flatview.errors import FlatviewError
from flatview.hostmem import PAGE_SIZE as PAGE
from kvm_backend.abi import KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY
from listeners.slot_layout import SlotMapping

OpKind = Literal["create", "delete", "flags", "move"]


class PlanError(FlatviewError):
    """The new layout cannot be expressed in KVM slots (e.g. too many slots)."""


@attrs.frozen(slots=True)
class Slot:
    """A live slot: its id inside the KVM address space and what it maps."""

    slot: int
    mapping: SlotMapping

    def __str__(self) -> str:
        m = self.mapping
        return (
            f"slot {self.slot:3d} gpa={m.gpa:#x} size={m.size:#x} flags={m.flags:#x} "
            f"ua={m.hva:#x} {m.name or '?'} @{m.block_offset:#x}"
        )


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

    def trace(self, as_id: int = 0, ret: int = 0) -> str:
        """The ioctl exactly as QEMU 10 traces it (a delete shows size=0x0 flags=0x0;
        ``guest_memfd=-1``, and ``guest_memfd_offset`` the slot's offset in its block)."""
        flags, gpa, size, hva = self.ioctl_args()
        return (
            f"kvm_set_user_memory AddrSpace#{as_id} Slot#{self.slot} flags={flags:#x} "
            f"gpa={gpa:#x} size={size:#x} ua={hva:#x} guest_memfd=-1 "
            f"guest_memfd_offset={self.mapping.block_offset:#x} ret={ret}"
        )

    def __str__(self) -> str:
        return self.trace()


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

    @property
    def ioctls(self) -> int:
        return len(self.ops)

    def __str__(self) -> str:
        """The plan as QEMU's trace lines, one per ioctl, in order."""
        return "\n".join(op.trace() for op in self.ops) or "(no ioctl)"

    @property
    def needs_pause(self) -> bool:
        return any(op.protected for op in self.ops)

    def count(self, kind: OpKind) -> int:
        return sum(1 for op in self.ops if op.op == kind)


class MappingIndex:
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


def overlap(a_lo: int, a_hi: int, b_lo: int, b_hi: int) -> int:
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


def _continues(a: SlotMapping, b: SlotMapping) -> bool:
    """``b`` starts where ``a`` ends and maps the next bytes of the same block alike."""
    return a.end == b.gpa and a.block == b.block and a.delta == b.delta and a.flags == b.flags


def _cap(limit: int, max_size: int | None) -> int:
    """The largest slot a merge may make: ``limit``, and no more than ``max_size``."""
    return min(limit, max_size) if max_size else limit


def _runs(pieces: list[SlotMapping], limit: int, max_size: int | None) -> list[SlotMapping]:
    """Cut pieces that continue each other joined into runs of at most ``limit``
    bytes (and ``max_size``); a piece larger than ``limit`` stays alone."""
    if limit <= 0:
        return pieces
    cap = _cap(limit, max_size)
    out: list[SlotMapping] = []
    for p in pieces:
        if out and _continues(out[-1], p) and out[-1].size + p.size <= cap:
            out[-1] = attrs.evolve(out[-1], size=out[-1].size + p.size)
        else:
            out.append(p)
    return out


def _absorb(
    pieces: list[SlotMapping],
    kept: list[Slot],
    limit: int,
    max_size: int | None,
    edges: Container[int],
) -> tuple[list[SlotMapping], list[Slot]]:
    """New pieces extended over the small kept slots they continue across an edge
    the tree no longer has (not in ``edges``): each such slot is deleted and its
    bytes re-created in the piece.  Returns the pieces and the absorbed slots.  Only
    slots and results within ``limit`` bytes."""
    cap = _cap(limit, max_size)
    by_end = {s.mapping.end: s for s in kept}
    by_start = {s.mapping.gpa: s for s in kept}
    absorbed: dict[int, Slot] = {}
    out: list[SlotMapping] = []
    for p in sorted(pieces, key=lambda m: m.gpa):
        while True:
            k = by_end.get(p.gpa)
            if k is None or k.slot in absorbed or p.gpa in edges or not _continues(k.mapping, p):
                break
            if k.mapping.size + p.size > cap:
                break
            absorbed[k.slot] = k
            p = attrs.evolve(k.mapping, size=k.mapping.size + p.size)
        while True:
            k = by_start.get(p.end)
            if k is None or k.slot in absorbed or p.end in edges or not _continues(p, k.mapping):
                break
            if k.mapping.size + p.size > cap:
                break
            absorbed[k.slot] = k
            p = attrs.evolve(p, size=p.size + k.mapping.size)
        out.append(p)
    return out, list(absorbed.values())


def exact_key(m: SlotMapping) -> tuple[int, int, int, int, int]:
    return (m.gpa, m.size, m.hva, m.block, m.flags & KVM_MEM_READONLY)


def _triage(
    old: Sequence[Slot], want: MappingIndex, desired: Sequence[SlotMapping], qemu_like: bool
) -> tuple[list[Slot], list[SlotOp], list[Slot]]:
    """Split the old slots into kept (with flags-only ops for dirty-log changes) and
    deleted: a slot is kept when every byte stays mapped the same way."""
    kept: list[Slot] = []
    flag_ops: list[SlotOp] = []
    deleted: list[Slot] = []
    exact_new = {exact_key(m): m for m in desired} if qemu_like else {}
    for s in old:
        m = s.mapping
        if qemu_like:
            match = exact_new.get(exact_key(m))
            keep = match is not None
            new_flags = match.flags if match is not None else m.flags
        else:
            cover = want.overlapping(m.gpa, m.end)
            covered = sum(overlap(m.gpa, m.end, d.gpa, d.end) for d in cover)
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
    deleted: list[Slot], pieces: list[SlotMapping], want: MappingIndex
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
                o.slot != s.slot and overlap(r.gpa, r.end, o.mapping.gpa, o.mapping.end)
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
    caps: PlanCaps | None = None,
    boundaries: Collection[int] = (),
    qemu_like: bool = False,
    merge_limit: int = 0,
    reserved: Container[int] = frozenset(),
    reserved_count: int = 0,
    free_ids: Iterable[int] | None = None,
) -> Plan:
    """Plan the ioctls that turn the slot table ``old`` into one mapping ``desired``.

    ``boundaries``: where the region tree may cut a mapping later.  ``qemu_like``:
    plan as QEMU's listener does (one slot per flat range, delete every slot whose
    range changed), for comparison.  ``reserved``/``reserved_count``: slot ids (and
    their number) held by slots outside ``old`` that the plan must leave alone (a
    windowed plan: ``old`` and ``desired`` are what intersects the changed windows);
    ``free_ids``: the candidate ids for new slots in ascending order (default: all).
    """
    caps = caps or PlanCaps()
    want = MappingIndex(desired)
    old_sorted = sorted(old, key=lambda s: s.mapping.gpa)
    kept, flag_ops, deleted = _triage(old_sorted, want, desired, qemu_like)

    remaining = _subtract(list(want.items), [(s.mapping.gpa, s.mapping.end) for s in kept])
    if not qemu_like:
        remaining = _coalesce(remaining)

    # cut new pieces where the tree may change them later (within the budget)
    pieces = _cut(remaining, (), caps.max_slot_size)
    if boundaries and not qemu_like:
        cut = _cut(remaining, boundaries, caps.max_slot_size)
        if len(kept) + len(cut) + reserved_count <= min(caps.slot_budget, caps.nr_memslots):
            pieces = cut
    if len(kept) + len(pieces) + reserved_count > caps.nr_memslots:
        raise PlanError(
            f"layout needs {len(kept) + len(pieces) + reserved_count} slots, the kernel "
            f"allows {caps.nr_memslots}"
        )
    old_ranges = MappingIndex([s.mapping for s in old_sorted])
    if merge_limit and not qemu_like and pieces:
        pieces = _runs(pieces, merge_limit, caps.max_slot_size)
        paid = any(want.overlapping(s.mapping.gpa, s.mapping.end) for s in deleted) or any(
            old_ranges.overlapping(p.gpa, p.end) for p in pieces
        )
        if paid:  # the vCPUs pause for this commit anyway: merge small kept slots in
            edges = frozenset(boundaries)
            pieces, absorbed = _absorb(pieces, kept, merge_limit, caps.max_slot_size, edges)
            if absorbed:
                gone = {s.slot for s in absorbed}
                kept = [s for s in kept if s.slot not in gone]
                flag_ops = [o for o in flag_ops if o.slot not in gone]
                deleted = sorted(
                    deleted + [s for s in old_sorted if s.slot in gone],
                    key=lambda s: s.mapping.gpa,
                )
    moves, creates = ([], pieces) if qemu_like else _match_moves(deleted, pieces, want)
    moved_ids = {s.slot for s, _ in moves}

    used = {s.slot for s in kept} | moved_ids
    candidates = range(caps.nr_memslots) if free_ids is None else free_ids
    free = (i for i in candidates if i not in used and i not in reserved)
    create_slots = [Slot(next(free), c) for c in creates]

    # protection and the hole figures: bytes mapped both before and after
    remapped = unchanged = 0
    del_ops: list[SlotOp] = []
    for s in deleted:
        if s.slot in moved_ids:
            continue
        m = s.mapping
        after = want.overlapping(m.gpa, m.end)
        for d in after:
            n = overlap(m.gpa, m.end, d.gpa, d.end)
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

    # The order is the atomicity guarantee (see the module docstring, "Op order").

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
    return Plan(
        ops=tuple(ops),
        slots_after=tuple(after_slots),
        remapped_bytes=remapped,
        unchanged_bytes_unmapped=unchanged,
    )
