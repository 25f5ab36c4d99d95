"""A memslot backend's history: every slot-table change, and the holes between two
instants.  An optional capability of a backend (``backend.timeline`` is None where
there is none, as on real KVM); the simulated KVM keeps one.

It stores one event per successful ioctl (the slot, what it held before and
after), not the whole table per instant, so recording is O(1) per ioctl and a
query costs what it looks at: the events since the instant asked about.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import attrs

from kvm_backend.memslot import Memslot


@attrs.frozen
class Hole:
    """Guest bytes ``[gpa, gpa + size)`` unmapped during ``steps`` intermediate states.

    ``same_mapping``: mapped identically (host address, READONLY) at both ends, so the
    hole was avoidable; otherwise the bytes were remapped (or only mapped at one end).
    """

    gpa: int
    size: int
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
        are replayed.
        """
        t1 = self.now if t1 is None else t1
        window = self._events[t0:t1]
        touched = {slot for slot, _, _ in window if slot >> 16 == as_id}
        state = self.slots_at(t0, touched)
        states = [list(state.values())]
        for slot, _before, after in window:
            if slot in touched:
                if after is None:
                    state.pop(slot, None)
                else:
                    state[slot] = after
            states.append(list(state.values()))
        cuts = sorted({b for st in states for ms in st for b in (ms.gpa, ms.end)})
        out: list[Hole] = []
        for lo, hi in itertools.pairwise(cuts):
            first = _lookup(states[0], lo, as_id)
            last = _lookup(states[-1], lo, as_id)
            if first is None or last is None:
                continue
            steps = sum(1 for st in states[1:-1] if _lookup(st, lo, as_id) is None)
            if steps == 0:
                continue
            same = first == last
            prev = out[-1] if out else None
            if (
                prev
                and prev.gpa + prev.size == lo
                and (prev.steps, prev.same_mapping)
                == (
                    steps,
                    same,
                )
            ):
                out[-1] = Hole(prev.gpa, prev.size + hi - lo, steps, same)
            else:
                out.append(Hole(lo, hi - lo, steps, same))
        return out


def _lookup(slots: Iterable[Memslot], gpa: int, as_id: int) -> tuple[int, bool] | None:
    for ms in slots:
        if ms.as_id == as_id and ms.gpa <= gpa < ms.end:
            return (ms.hva_of(gpa), ms.readonly)
    return None
