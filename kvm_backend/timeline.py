"""A memslot backend's history: every slot-table change, and the holes between two
instants.  An optional capability of a backend (``backend.timeline`` is None where
there is none, as on real KVM); the simulated KVM keeps one.

It stores one event per successful ioctl (the slot, what it held before and
after), not the whole table per instant, so recording is O(1) per ioctl and a
query costs what it looks at: the events since the instant asked about.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from kvm_backend.memslot import Memslot


@attrs.frozen
class Hole:
    """Guest bytes ``[gpa, gpa + size)`` unmapped during ``steps`` intermediate states.

    ``same_mapping``: mapped identically (host address, READONLY) at both ends, so the
    hole was avoidable; otherwise the bytes were remapped (or only mapped at one end).
    """

    gpa: int = attrs.field(repr=hex)
    size: int = attrs.field(repr=hex)
    steps: int
    same_mapping: bool


_Event = tuple[int, Memslot | None, Memslot | None]


class Timeline:
    def __init__(self) -> None:
        self._events: list[_Event] = []
        self._table: dict[int, Memslot] = {}

    @property
    def now(self) -> int:
        """The current instant: the number of recorded changes."""
        return len(self._events)

    def record(self, slot: int, before: Memslot | None, after: Memslot | None) -> None:
        self._events.append((slot, before, after))
        if after is None:
            self._table.pop(slot, None)
        else:
            self._table[slot] = after

    def slots_at(self, instant: int, only: set[int] | None = None) -> dict[int, Memslot]:
        """The slot table at ``instant`` (restricted to the slots ``only``)."""
        table = {k: v for k, v in self._table.items() if only is None or k in only}
        for slot, before, _after in reversed(self._events[instant:]):
            if only is not None and slot not in only:
                continue
            if before is None:
                table.pop(slot, None)
            else:
                table[slot] = before
        return table

    def mapping_at(self, instant: int, gpa: int, as_id: int = 0) -> tuple[int, bool] | None:
        """(host address, readonly) of ``gpa`` at ``instant``, or None in a hole."""
        return _lookup(self.slots_at(instant).values(), gpa, as_id)

    def holes(self, t0: int, t1: int | None = None, as_id: int = 0) -> list[Hole]:
        """Bytes mapped at both ``t0`` and ``t1`` but unmapped in some state between.

        Only the slots changed between the two instants can leave a hole (an
        unchanged slot cannot overlap a changed one at any instant), so only they
        are looked at: each of their states is a segment of gpa and of time, and one
        sweep over the segments' edges finds, per piece of gpa, its mapping at both
        ends and how many intermediate states left it unmapped.  O(n log n) in the
        number of changes.
        """
        t1 = self.now if t1 is None else t1
        window = self._events[t0:t1]
        m = len(window)
        touched = {slot for slot, _, _ in window if slot >> 16 == as_id}
        # segments: (gpa lo, gpa hi, first instant alive, first instant gone, memslot)
        segments: list[tuple[int, int, int, int, Memslot]] = []
        alive: dict[int, tuple[int, Memslot]] = {
            k: (0, ms) for k, ms in self.slots_at(t0, touched).items()
        }
        for k, (slot, _before, after) in enumerate(window, 1):
            if slot not in touched:
                continue
            old = alive.pop(slot, None)
            if old is not None:
                segments.append((old[1].gpa, old[1].end, old[0], k, old[1]))
            if after is not None:
                alive[slot] = (k, after)
        for since, ms in alive.values():
            segments.append((ms.gpa, ms.end, since, m + 1, ms))
        edges: list[tuple[int, int, int]] = []  # (gpa, 0 = remove / 1 = add, segment index)
        for n, (lo, hi, _, _, _) in enumerate(segments):
            edges.append((lo, 1, n))
            edges.append((hi, 0, n))
        edges.sort()
        inner = max(m - 1, 0)  # intermediate states: instants 1 .. m-1
        active: set[int] = set()
        covered = 0
        out: list[Hole] = []
        for e, (pos, kind, n) in enumerate(edges):
            _, _, since, gone, _ = segments[n]
            span = max(0, min(gone, m) - max(since, 1))
            if kind:
                active.add(n)
                covered += span
            else:
                active.discard(n)
                covered -= span
            nxt = edges[e + 1][0] if e + 1 < len(edges) else pos
            if nxt <= pos or not active:
                continue
            first = next((segments[a][4] for a in active if segments[a][2] == 0), None)
            last = next((segments[a][4] for a in active if segments[a][3] == m + 1), None)
            steps = inner - covered
            if first is None or last is None or steps <= 0:
                continue
            same = (first.hva_of(pos), first.readonly) == (last.hva_of(pos), last.readonly)
            prev = out[-1] if out else None
            if (
                prev
                and prev.gpa + prev.size == pos
                and (prev.steps, prev.same_mapping)
                == (
                    steps,
                    same,
                )
            ):
                out[-1] = Hole(prev.gpa, prev.size + nxt - pos, steps, same)
            else:
                out.append(Hole(pos, nxt - pos, steps, same))
        return out


def _lookup(slots: Iterable[Memslot], gpa: int, as_id: int) -> tuple[int, bool] | None:
    for ms in slots:
        if ms.as_id == as_id and ms.gpa <= gpa < ms.end:
            return (ms.hva_of(gpa), ms.readonly)
    return None
