"""What the CLI computes: states from scenario steps or dumps, driven through the
KVM listener into the simulated or the real KVM, reported as stable JSON facts."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import attrs

from flatview.address_space import AddressSpace
from flatview.cli.dump import DumpRange, load_dump, looks_like_dump
from flatview.cli.scenario import Scenario
from flatview.cli.snapshot import SnapshotTree, ranges_of_view
from flatview.diff import diff_ranges
from flatview.errors import InputError
from kvm_backend.backend import MemslotBackend
from kvm_backend.kvm import Kvm, kvm_unavailable_reason
from kvm_backend.sim import SimVm
from listeners.kvm_listener import CommitReport, KvmMemoryListener, Mode
from listeners.planner import Slot


@attrs.frozen
class Ref:
    """``FILE@STEP`` (``FILE@`` = initial state) or a dump file."""

    path: str
    step: str | None
    dump: bool
    name: str | None = None
    """What to call it instead of its path (``qmp:SOCKET`` for a live snapshot)."""

    @classmethod
    def parse(cls, text: str) -> Ref:
        """A path that names a file is that file, ``@`` in its folders included;
        otherwise the text after the last ``@`` is a scenario step."""
        if Path(text).is_file() or "@" not in text:
            return cls(text, None, looks_like_dump(text))
        path, _, step = text.rpartition("@")
        if looks_like_dump(path):
            raise InputError(path, 0, "a dump file takes no '@STEP'")
        return cls(path, step or None, False)

    @property
    def label(self) -> str:
        if self.name is not None:
            return self.name
        return self.path if self.dump else f"{self.path}@{self.step or ''}"

    @classmethod
    def live(cls, socket: str, folder: str, timeout: float) -> Ref:
        """A snapshot of a running QEMU's flat views (``info mtree -f`` over QMP),
        kept as a dump file in ``folder``."""
        from flatview.cli.qmp import flat_views

        text = flat_views(socket, timeout)
        with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".mtree", delete=False) as f:
            f.write(text)
        return cls(f.name, None, True, f"qmp:{socket}")


def step_index(sc: Scenario, step: str | None) -> int:
    return 0 if step is None else sc.step_index(step) + 1


def range_json(r: DumpRange) -> dict[str, Any]:
    return {
        "start": r.start,
        "size": r.size,
        "region": r.region,
        "offset": r.offset,
        "kind": r.type,
        "readonly": r.readonly,
    }


def range_diff(a: Sequence[DumpRange], b: Sequence[DumpRange]) -> dict[str, Any]:
    """The model's two-pass diff over dumped ranges, grouped for the CLI."""
    d = diff_ranges(a, b)
    resized_old = d.resized_old
    return {
        "removed": [r for r in d.removed if id(r) not in resized_old],
        "added": [u.new for u in d.updates if u.kind == "add"],
        "resized": [(u.old, u.new) for u in d.updates if u.kind == "resize"],
        "unchanged": sum(1 for u in d.updates if u.kind == "nop"),
    }


def slot_json(s: Slot) -> dict[str, Any]:
    m = s.mapping
    return {
        "slot": s.slot,
        "gpa": m.gpa,
        "size": m.size,
        "flags": m.flags,
        "region": m.name,
        "offset": m.block_offset,
    }


def plan_facts(
    name: str,
    report: CommitReport | None,
    unchanged: int,
    slots: Sequence[Slot],
    as_id: int = 0,
) -> dict[str, Any]:
    plan = report.plan if report is not None else None
    summary = report.summary() if report is not None else None
    ops = plan.ops if plan is not None else ()
    return {
        "name": name,
        "ioctls": [
            {
                "op": op.op,
                "as_id": as_id,
                "slot": op.slot,
                "gpa": op.ioctl_args()[1],
                "size": op.ioctl_args()[2],
                "flags": op.ioctl_args()[0],
                "ua": op.ioctl_args()[3],
                "guest_memfd_offset": op.mapping.block_offset,
            }
            for op in ops
        ],
        "classes": [
            {"kind": c.kind, "gpa": c.gpa, "size": c.size}
            for c in (summary.classes if summary is not None else ())
        ],
        "remapped_bytes": plan.remapped_bytes if plan is not None else 0,
        "unchanged_bytes_unmapped": unchanged,
        "pause_needed": report.pause_needed if report is not None else False,
        "qemu_style": {
            "ioctls": summary.qemu_ioctls if summary is not None else 0,
            "unmapped_bytes": summary.qemu_unmapped_bytes if summary is not None else 0,
        },
        "slots_after": [slot_json(s) for s in slots],
    }


@contextmanager
def backend(kind: str) -> Iterator[MemslotBackend]:
    if kind == "sim":
        yield SimVm()
        return
    reason = kvm_unavailable_reason()
    if reason is not None:
        raise InputError("--backend kvm", 0, f"needs /dev/kvm: {reason}")
    with Kvm() as kvm, kvm.create_vm(slot_zap_all=False) as vm:
        yield vm


class Driver:
    """A listener on a backend, reporting each commit as facts."""

    def __init__(self, vm: MemslotBackend, space: AddressSpace, mode: Mode = "auto") -> None:
        self.vm = vm
        self.listener = KvmMemoryListener(vm, space, mode=mode)

    def commit(self, name: str, change: Callable[[], None]) -> dict[str, Any]:
        before = len(self.listener.reports)
        timeline = self.vm.timeline
        t0 = timeline.now if timeline is not None else 0
        change()
        reports = self.listener.reports[before:]
        report = reports[-1] if reports else None
        if report is None:
            unchanged = 0
        elif timeline is not None:  # measured, where the backend keeps a history
            unchanged = sum(h.size for h in timeline.holes(t0) if h.same_mapping)
        else:
            unchanged = report.plan.unchanged_bytes_unmapped
        return plan_facts(name, report, unchanged, self.listener.slots)

    def initial_facts(self, name: str) -> dict[str, Any]:
        """The registration commit that laid out the first state."""
        reports = self.listener.reports
        return plan_facts(name, reports[-1] if reports else None, 0, self.listener.slots)


@attrs.define
class Pair:
    """Ranges of A and B, the facts of the commit from A to B, and the slots of each."""

    a: list[DumpRange]
    b: list[DumpRange]
    facts: dict[str, Any]
    slots_a: list[Slot]
    slots_b: list[Slot]


def diff_refs(a: Ref, b: Ref, as_name: str | None = None, mode: Mode = "auto") -> Pair:
    vm = SimVm()
    if not a.dump and not b.dump and a.path == b.path:
        sc = Scenario(a.path)
        try:
            ia, ib = step_index(sc, a.step), step_index(sc, b.step)
            if ib >= ia:
                sc.run_until(ia)
                space = sc.address_space(as_name)
                drv = Driver(vm, space, mode)
                ranges_a, slots_a = ranges_of_view(space.flatview), list(drv.listener.slots)
                facts = drv.commit(b.label, lambda: sc.apply_many(sc.steps[ia:ib]))
                return Pair(
                    ranges_a,
                    ranges_of_view(space.flatview),
                    facts,
                    slots_a,
                    list(drv.listener.slots),
                )
        finally:
            sc.close()
    ra, rb = state_ranges(a, as_name), state_ranges(b, as_name)
    snap = SnapshotTree([ra, rb])
    try:
        snap.show(ra)
        drv = Driver(vm, snap.space, mode)
        slots_a = list(drv.listener.slots)
        facts = drv.commit(b.label, lambda: snap.show(rb))
        return Pair(ra, rb, facts, slots_a, list(drv.listener.slots))
    finally:
        snap.close()


def state_ranges(ref: Ref, as_name: str | None = None) -> list[DumpRange]:
    if ref.dump:
        return load_dump(ref.path, as_name)
    sc = Scenario(ref.path)
    try:
        sc.run_until(step_index(sc, ref.step))
        return ranges_of_view(sc.address_space(as_name).flatview)
    finally:
        sc.close()


def replay(
    paths: Sequence[str], backend_kind: str, mode: Mode, as_name: str | None = None
) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    with backend(backend_kind) as vm:
        if len(paths) == 1 and not looks_like_dump(paths[0]):
            sc = Scenario(paths[0])
            try:
                drv = Driver(vm, sc.address_space(as_name), mode)
                steps.append(drv.initial_facts("(initial)"))
                for st in sc.steps:
                    steps.append(drv.commit(st.name, partial(sc.apply, st)))
            finally:
                sc.close()
        else:
            for p in paths:
                if not looks_like_dump(p):
                    raise InputError(p, 0, "replay takes one scenario file or dump files")
            states = [load_dump(p, as_name) for p in paths]
            snap = SnapshotTree(states)
            try:
                snap.show(states[0])
                drv = Driver(vm, snap.space, mode)
                steps.append(drv.initial_facts(paths[0]))
                for p, state in zip(paths[1:], states[1:], strict=True):
                    steps.append(drv.commit(p, partial(snap.show, state)))
            finally:
                snap.close()
    totals = {
        "steps": len(steps),
        "ioctls": sum(len(s["ioctls"]) for s in steps),
        "remapped_bytes": sum(s["remapped_bytes"] for s in steps),
        "unchanged_bytes_unmapped": sum(s["unchanged_bytes_unmapped"] for s in steps),
        "pause_needed_steps": sum(1 for s in steps if s["pause_needed"]),
        "qemu_style_ioctls": sum(s["qemu_style"]["ioctls"] for s in steps),
    }
    return {"steps": steps, "totals": totals}
