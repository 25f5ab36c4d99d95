"""The KVM memory listener: queue a transaction's callbacks, plan at commit, apply.

During a transaction it only queues what it is told.  At commit it hands its slot
table and the new view to :func:`~kvm_backend.planner.plan` and executes the plan:

* ``auto`` (default): vCPUs are paused for exactly the protected ioctls (those
  unmapping or mapping bytes that are mapped both before and after), and only if
  there are any;
* ``optimistic``: never pause; a :class:`CommitWindow` lets the vCPU runner repair
  the accesses that hit the hole;
* ``quiesce``: pause around every commit that issues an ioctl (QEMU-like);
* ``naive``: never pause, no repair (unsafe: it exists to show the tests can fail).

Dirty bits of a logging slot are harvested right before the ioctl that would free
them, into a per-block :class:`DirtyLog`, so re-slotting never loses them (exact
while paused; otherwise every page of that slot is also marked dirty).  If any
ioctl fails, the ones already done are undone in reverse and :class:`CommitError`
is raised: the slot table is back to the last committed layout.
"""

from __future__ import annotations

import time
from typing import Literal

import attrs

from flatview.address_space import AddressSpace
from flatview.section import MemoryRegionSection
from kvm_backend.commit_window import CommitWindow
from kvm_backend.dirty import DirtyLog
from kvm_backend.errors import CommitError, KvmError
from kvm_backend.memslot import MemslotBackend, slot_number
from kvm_backend.planner import Plan, PlanCaps, Slot, SlotOp, plan
from kvm_backend.slot_layout import SlotMapping, desired_mappings, tree_boundaries
from kvm_backend.vcpu_control import VcpuControl
from listeners.protocol import MemoryListener

Mode = Literal["auto", "optimistic", "quiesce", "naive"]
MODES: tuple[Mode, ...] = ("auto", "optimistic", "quiesce", "naive")


@attrs.frozen
class CommitReport:
    """What one commit did."""

    plan: Plan
    paused: bool
    pause_ns: int
    """Time vCPUs spent paused by this commit (0 if none)."""
    duration_ns: int
    """Planning plus ioctls."""
    callbacks: tuple[str, ...]
    ioctl_ns: int = 0
    """Time spent inside memslot ioctls (and dirty-log harvests)."""


class KvmMemoryListener(MemoryListener):
    """Keeps one KVM address space's memslots equal to an AddressSpace's view."""

    priority = 10  # QEMU's MEMORY_LISTENER_PRIORITY_ACCEL

    def __init__(
        self,
        vm: MemslotBackend,
        address_space: AddressSpace,
        as_id: int = 0,
        vcpus: VcpuControl | None = None,
        mode: Mode = "auto",
        *,
        qemu_compat: bool = False,
        tree_aware: bool = True,
        qemu_like: bool = False,
        max_slot_size: int | None = None,
        slot_budget: int = 512,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
        self.vm = vm
        self.space = address_space
        self.as_id = as_id
        self.vcpus = vcpus
        self.mode: Mode = mode
        self.qemu_compat = qemu_compat
        self.tree_aware = tree_aware
        self.qemu_like = qemu_like
        self.caps = PlanCaps(vm.nr_memslots, max_slot_size, slot_budget)
        self.dirty = DirtyLog()
        self.window = CommitWindow(address_space) if mode == "optimistic" else None
        if vcpus is not None:
            vcpus.set_commit_window(self.window)
        self.reports: list[CommitReport] = []
        self._slots: dict[int, Slot] = {}
        self._previous: list[SlotMapping] = []
        self._queue: list[str] = []
        self._detaching = False
        self._bounds: tuple[int, frozenset[int]] | None = None
        self._ioctl_ns = 0
        address_space.add_listener(self)

    # -- state ---------------------------------------------------------------------
    @property
    def slots(self) -> tuple[Slot, ...]:
        """The slot table as last committed, in gpa order."""
        return tuple(sorted(self._slots.values(), key=lambda s: s.mapping.gpa))

    @property
    def last_report(self) -> CommitReport | None:
        return self.reports[-1] if self.reports else None

    def close(self) -> None:
        """Unregister: every slot of this listener is deleted."""
        self._detaching = True
        try:
            self.space.remove_listener(self)
        finally:
            self._detaching = False

    # -- queued callbacks -------------------------------------------------------------
    def begin(self) -> None:
        self._queue.clear()

    def region_add(self, section: MemoryRegionSection) -> None:
        self._queue.append("add")

    def region_del(self, section: MemoryRegionSection) -> None:
        self._queue.append("del")

    def region_nop(self, section: MemoryRegionSection) -> None:
        self._queue.append("nop")

    def region_resize(self, old: MemoryRegionSection, new: MemoryRegionSection) -> None:
        self._queue.append("resize")

    def log_start(self, section: MemoryRegionSection, old_mask: int, new_mask: int) -> None:
        self._queue.append("log_start")

    def log_stop(self, section: MemoryRegionSection, old_mask: int, new_mask: int) -> None:
        self._queue.append("log_stop")

    def log_sync(self, section: MemoryRegionSection) -> None:
        for s in self._slots.values():
            m = s.mapping
            if m.logging and m.gpa < section.end and section.addr < m.end:
                self._harvest(s.slot, m)

    def commit(self) -> None:
        queued = tuple(self._queue)
        self._queue.clear()
        if not self._detaching and all(q == "nop" for q in queued):
            return
        self.apply(queued)

    # -- planning and execution -----------------------------------------------------------
    def desired(self) -> list[SlotMapping]:
        if self._detaching:
            return []
        return desired_mappings(
            self.space.flatview, readonly_mem=self.vm.readonly_mem, qemu_compat=self.qemu_compat
        )

    def plan_now(self, desired: list[SlotMapping] | None = None) -> Plan:
        """The plan the next commit would execute for the current view (no I/O)."""
        bounds = self._boundaries() if self.tree_aware and not self._detaching else frozenset()
        return plan(
            list(self._slots.values()),
            self.desired() if desired is None else desired,
            previous=self._previous,
            caps=self.caps,
            boundaries=bounds,
            qemu_like=self.qemu_like,
        )

    def _boundaries(self) -> frozenset[int]:
        """The tree's boundaries, recomputed only when the structure changed."""
        gen = self.space.system.structure_generation
        if self._bounds is None or self._bounds[0] != gen:
            self._bounds = (gen, tree_boundaries(self.space.root))
        return self._bounds[1]

    def apply(self, callbacks: tuple[str, ...] = ()) -> CommitReport:
        t0 = time.perf_counter_ns()
        self._ioctl_ns = 0
        desired = self.desired()
        p = self.plan_now(desired)
        paused_ns = self._execute(p)
        self._slots = {s.slot: s for s in p.slots_after}
        self._previous = desired
        report = CommitReport(
            p, paused_ns > 0, paused_ns, time.perf_counter_ns() - t0, callbacks, self._ioctl_ns
        )
        self.reports.append(report)
        return report

    def sync_dirty_log(self) -> None:
        """Harvest every logging slot into :attr:`dirty`."""
        for s in list(self._slots.values()):
            if s.mapping.logging:
                self._harvest(s.slot, s.mapping)

    def _harvest(self, slot: int, mapping: SlotMapping) -> None:
        t0 = time.perf_counter_ns()
        bitmap = self.vm.get_dirty_log(slot_number(self.as_id, slot))
        self._ioctl_ns += time.perf_counter_ns() - t0
        self.dirty.merge_bitmap(mapping, bitmap)

    def _ioctl(self, slot: int, flags: int, gpa: int, size: int, hva: int) -> None:
        t0 = time.perf_counter_ns()
        try:
            self.vm.set_user_memory_region(slot_number(self.as_id, slot), flags, gpa, size, hva)
        finally:
            self._ioctl_ns += time.perf_counter_ns() - t0

    def _execute(self, p: Plan) -> int:
        """Run the plan; returns the ns vCPUs were paused.  Rolls back on failure."""
        vcpus = self.vcpus
        pause_all = vcpus is not None and (
            (self.mode == "quiesce" and bool(p.ops)) or (self.mode == "auto" and p.needs_pause)
        )
        window = self.window if p.needs_pause else None
        done: list[SlotOp] = []
        paused_at = 0
        paused_ns = 0
        window_open = False
        try:
            for op in p.ops:
                guard = op.protected or self.mode == "quiesce"
                if guard and pause_all and not paused_at:
                    assert vcpus is not None
                    vcpus.pause_all()
                    paused_at = time.perf_counter_ns()
                elif not guard and paused_at:
                    assert vcpus is not None
                    vcpus.resume_all()
                    paused_ns += time.perf_counter_ns() - paused_at
                    paused_at = 0
                if op.protected and window is not None and not window_open:
                    window.begin()
                    window_open = True
                elif not op.protected and window_open:
                    assert window is not None
                    window.end()
                    window_open = False
                self._run_op(op, exact=bool(paused_at) or vcpus is None)
                done.append(op)
        except KvmError as e:  # MemslotError, or a failed harvest
            if not paused_at and pause_all and any(o.protected for o in done):
                assert vcpus is not None
                vcpus.pause_all()
                paused_at = time.perf_counter_ns()
            failed = p.ops[len(done)]
            rolled_back, cause = self._rollback(done)
            m = failed.mapping
            raise CommitError(
                failed.op,
                int(e.errno or 0),
                rolled_back=rolled_back,
                cause=cause or str(e),
                slot=failed.slot,
                gpa=m.gpa,
                size=m.size,
                flags=m.flags,
            ) from e
        finally:
            if window_open:
                assert window is not None
                window.end()
            if paused_at:
                assert vcpus is not None
                vcpus.resume_all()
                paused_ns += time.perf_counter_ns() - paused_at
        return paused_ns

    def _run_op(self, op: SlotOp, *, exact: bool) -> None:
        if op.harvest and op.old is not None:
            self._harvest(op.slot, op.old)
        self._ioctl(op.slot, *op.ioctl_args())
        if op.harvest and op.old is not None and not exact:
            # a write between the harvest and the ioctl cannot be told apart: report all
            self.dirty.mark_all(op.old)

    def _rollback(self, done: list[SlotOp]) -> tuple[bool, str]:
        for op in reversed(done):
            try:
                if op.op == "create":
                    self._ioctl(op.slot, 0, op.mapping.gpa, 0, op.mapping.hva)
                else:
                    assert op.old is not None
                    o = op.old
                    self._ioctl(op.slot, o.flags, o.gpa, o.size, o.hva)
            except KvmError as e:
                return False, f"undoing {op.op} of slot {op.slot}: {e}"
        return True, ""
