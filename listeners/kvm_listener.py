"""The KVM memory listener: queue what a transaction tells it, plan at commit, apply.

It works only from what it is told.  During a transaction it queues each callback
with its section (del / add / resize / log_start / log_stop, with masks; it does not
implement region_nop, so unchanged ranges cost it nothing);
at commit it applies that batch to its own copy of the view (the slot mapping of
every range it was told about), hands its slot table and that layout to the pure
:func:`~listeners.planner.plan`, and executes the plan.  It never reads the
address space's FlatView and never walks the region tree: where the layout needs
the tree's future cut points, it asks the address space for its cached
placements (:meth:`AddressSpace.placements`).

* ``auto`` (default): vCPUs are paused for exactly the protected ioctls (those
  unmapping or mapping bytes that are mapped both before and after), and only if
  there are any;
* ``optimistic``: never pause; a :class:`CommitWindow` lets the vCPU runner repair
  the accesses that hit the hole;
* ``quiesce``: pause around every commit that issues an ioctl (QEMU-like);
* ``naive``: never pause, no repair (unsafe: it exists to show the tests can fail).

Dirty bits of a logging slot are harvested right before the ioctl that would free
them, into the dirty bitmaps of the block behind the slot (:mod:`flatview.dirty`;
read them with ``MemoryRegion.get_dirty``), so re-slotting never loses them
(exact while paused; otherwise every page of that slot is also marked dirty).

Invariant, on every path: :attr:`slots` is exactly the kernel's slot table for
this listener (it records each ioctl that succeeded, rollbacks included).  If an
ioctl fails, the ones already done are undone in reverse and :class:`CommitError`
is raised (``rolled_back`` says whether the undo succeeded); the listener is then
out of sync, and its next commit — even one that tells it nothing —
plans from the exact table to the view it was told about.  Unregistering
(``close``, ``remove_listener``, ``AddressSpace.destroy``) tells it every range
is gone, so it deletes every slot it made.
"""

from __future__ import annotations

import bisect
import heapq
import logging
import threading
import time
from typing import Literal

import attrs

from flatview.address_space import AddressSpace
from flatview.dirty import ALL_CLIENTS
from flatview.errors import ConfigError
from flatview.hostmem import PAGE_SIZE as PAGE
from flatview.hostmem import RamBlock
from flatview.listener import ListenerBase
from flatview.region import ADDR_SPACE_END
from flatview.section import MemoryRegionSection
from kvm_backend.backend import MemslotBackend
from kvm_backend.errors import CommitError, KvmError
from kvm_backend.memslot import KVM_MEM_MAX_NR_PAGES, slot_number
from kvm_backend.vcpu_control import VcpuControl
from listeners.commit_window import CommitWindow
from listeners.cost import DEFAULT_COSTS, CostModel
from listeners.dirty import bitmap_pages, slot_pages
from listeners.planner import Plan, PlanCaps, Slot, SlotOp, plan
from listeners.report import Batch, Summary, summarize, summary_line
from listeners.slot_layout import SlotMapping, cut_points, slot_mapping

log = logging.getLogger(__name__)

Mode = Literal["auto", "optimistic", "quiesce", "naive"]
MODES: tuple[Mode, ...] = ("auto", "optimistic", "quiesce", "naive")

CallbackKind = Literal["del", "add", "resize", "log_start", "log_stop"]


class _Outside:
    """Slot ids of the table that a windowed plan does not see (it must not reuse them)."""

    def __init__(self, table: dict[int, Slot], seen: dict[int, Slot]) -> None:
        self._table, self._seen = table, seen

    def __contains__(self, slot: object) -> bool:
        return slot in self._table and slot not in self._seen


class RegistrationError(KvmError):
    """Registering a KVM listener failed and so did deleting what it had mapped.

    ``listener`` is not registered; its table names the slots left in the kernel:
    call ``listener.close()`` to retry their deletes.
    """

    def __init__(self, listener: KvmMemoryListener, cause: KvmError) -> None:
        super().__init__("register KVM listener", int(cause.errno or 0))
        self.listener = listener
        self.message = (
            f"registering the KVM listener failed and so did its cleanup ({cause}); "
            f"slots left in the kernel: {sorted(s.slot for s in listener.slots)}"
        )


@attrs.frozen(slots=True)
class Queued:
    """One callback as received: ``old`` is the old section of a resize."""

    kind: CallbackKind
    section: MemoryRegionSection
    old: MemoryRegionSection | None = None
    old_mask: int = 0
    new_mask: int = 0


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
    pause_needed: bool = False
    """The listener's mode pauses the vCPUs for this plan (whether or not it has any)."""
    ioctl_ns: int = 0
    """Time spent inside memslot ioctls (and dirty-log harvests)."""
    batch: Batch = attrs.field(factory=Batch)
    """The slot-level change the commit's callbacks asked for."""

    def summary(self) -> Summary:
        """Change classes and QEMU's figures for this commit (computed on demand)."""
        return summarize(self.batch)

    def line(self) -> str:
        """One line for people: classes, ioctls, bytes, pause, QEMU's figures."""
        return summary_line(self.plan, self.summary(), self.paused)


class KvmMemoryListener(ListenerBase):
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
        costs: CostModel = DEFAULT_COSTS,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
        if max_slot_size is not None and (
            isinstance(max_slot_size, bool)
            or not isinstance(max_slot_size, int)
            or max_slot_size <= 0
            or max_slot_size % PAGE
            or max_slot_size // PAGE > KVM_MEM_MAX_NR_PAGES
        ):
            raise ConfigError(
                f"max_slot_size {max_slot_size!r}: expected a positive multiple of the page "
                f"size ({PAGE:#x}) of at most {KVM_MEM_MAX_NR_PAGES} pages"
            )
        self.vm = vm
        self.space = address_space
        self.as_id = as_id
        self.vcpus = vcpus
        self.mode: Mode = mode
        self.qemu_compat = qemu_compat
        self.tree_aware = tree_aware
        self.qemu_like = qemu_like
        self.caps = PlanCaps(vm.nr_memslots, max_slot_size, slot_budget)
        self.costs = costs
        self.merge_limit = 0 if mode == "optimistic" else costs.merge_limit()
        """Pieces of one block share a slot up to this size (0 in ``optimistic`` mode,
        which never unmaps a byte that stays mapped); see :mod:`listeners.cost`."""
        self.window = CommitWindow(address_space) if mode == "optimistic" else None
        self.reports: list[CommitReport] = []
        self._slots: dict[int, Slot] = {}
        self._blocks: dict[int, RamBlock] = {}
        """The blocks behind the mappings it was told about, by ``RamBlock.id``."""
        self._told: dict[int, SlotMapping] = {}
        """The view as told: section start -> the slot mapping it asks for."""
        self._told_at: list[int] = []
        """The keys of ``_told``, sorted (its mappings never overlap)."""
        self._slot_at: list[tuple[int, int]] = []
        """(gpa, slot) of the table, sorted (slots never overlap)."""
        self._slot_starts: list[int] = []
        """The gpas of ``_slot_at``, for bisect."""
        self._holes: list[int] = []
        """Slot ids below ``_top`` that the table does not use, sorted."""
        self._top = 0
        """One past the highest slot id ever used."""
        self._queue: list[Queued] = []
        self._in_sync = True
        self.windowed = True
        """Plan only what the commit's callbacks touched (False: plan the whole table,
        the reference the windowed plan is tested against)."""
        self._cuts: tuple[int, frozenset[int], list[int]] | None = None
        self._ioctl_ns = 0
        self._lock = threading.RLock()
        """Held by a commit and by dirty-log syncs: ``sync_dirty_log`` may run on any
        thread but a vCPU's while commits run (a vCPU thread would deadlock with a
        commit that waits for it to park)."""
        try:
            address_space.add_listener(self)  # unregisters us again if the replay fails
        except BaseException as e:
            self._abandon(e)
            raise
        if vcpus is not None:
            vcpus.set_commit_window(self.window)

    # -- state ---------------------------------------------------------------------
    @property
    def slots(self) -> tuple[Slot, ...]:
        """The kernel's slot table for this listener, in gpa order."""
        return tuple(sorted(self._slots.values(), key=lambda s: s.mapping.gpa))

    @property
    def in_sync(self) -> bool:
        """False after a failed commit, until a later commit reconciled the table."""
        return self._in_sync

    @property
    def last_report(self) -> CommitReport:
        """The report of the last commit that reached this listener (raises
        :class:`~flatview.errors.ConfigError` before the first one)."""
        if not self.reports:
            raise ConfigError("the KVM listener has not committed anything yet")
        return self.reports[-1]

    def close(self) -> None:
        """Unregister and delete every slot of this listener.  Call again after a
        :class:`CommitError` to retry the deletes that failed."""
        if self in self.space.listeners:
            self.space.remove_listener(self)
        else:
            self._forget_view()
            self.apply()
        if self.vcpus is not None and self.window is not None:
            self.vcpus.set_commit_window(None)

    def _abandon(self, error: BaseException) -> None:
        """The constructor failed: delete whatever a failed rollback left mapped (the
        caller gets no object to close).  If even that fails, raise
        :class:`RegistrationError`, which carries the listener to ``close()`` later."""
        if not self._slots:
            return
        self._forget_view()
        try:
            self.apply()
        except KvmError as e:
            raise RegistrationError(self, e) from error

    # -- queued callbacks -------------------------------------------------------------
    def begin(self) -> None:
        self._queue.clear()

    def region_add(self, section: MemoryRegionSection) -> None:
        self._queue.append(Queued("add", section))

    def region_del(self, section: MemoryRegionSection) -> None:
        self._queue.append(Queued("del", section))

    def region_resize(self, old: MemoryRegionSection, new: MemoryRegionSection) -> None:
        self._queue.append(Queued("resize", new, old))

    def log_start(self, section: MemoryRegionSection, old_mask: int, new_mask: int) -> None:
        self._queue.append(Queued("log_start", section, None, old_mask, new_mask))

    def log_stop(self, section: MemoryRegionSection, old_mask: int, new_mask: int) -> None:
        self._queue.append(Queued("log_stop", section, None, old_mask, new_mask))

    def log_sync(self, section: MemoryRegionSection) -> None:
        with self._lock:
            for s in list(self._slots.values()):
                m = s.mapping
                if m.logging and m.gpa < section.end and section.addr < m.end:
                    self._harvest(s.slot, m)

    def commit(self) -> None:
        queued = tuple(self._queue)
        self._queue.clear()
        batch = self._take(queued)
        if self._in_sync and not queued:
            return
        windows = [(q.section.addr, q.section.end) for q in queued]
        windows += [(q.old.addr, q.old.end) for q in queued if q.old is not None]
        self.apply(tuple(q.kind for q in queued), batch, windows if self.windowed else None)

    def _mapping(self, section: MemoryRegionSection) -> SlotMapping | None:
        fr = section.range
        m = slot_mapping(fr, readonly_mem=self.vm.readonly_mem, qemu_compat=self.qemu_compat)
        if fr.ram_readable and self.vm.readonly_mem and (m is None or m.size != fr.size):
            what = "dropped" if m is None else f"trimmed to {m.gpa:#x}+{m.size:#x}"
            log.warning(
                "%s: RAM range %#x+%#x %s (not aligned to host pages: MMIO exits there)",
                section.region.name,
                fr.addr,
                fr.size,
                what,
            )
        block = section.region.ram_block
        if m is not None and block is not None:
            self._blocks[block.id] = block
        return m

    def _take(self, queued: tuple[Queued, ...]) -> Batch:
        """Apply the queued callbacks to the view as told; the slot-level change."""
        told = self._told
        removed: list[SlotMapping] = []
        added: list[SlotMapping] = []
        relogged: list[tuple[SlotMapping, SlotMapping]] = []
        for q in queued:
            if q.kind in ("del", "resize"):
                gone = self._untell((q.old or q.section).addr)
                if gone is not None:
                    removed.append(gone)
            if q.kind in ("add", "resize"):
                m = self._mapping(q.section)
                if m is not None:
                    self._tell(q.section.addr, m)
                    added.append(m)
            elif q.kind != "del":  # log_start, log_stop: the dirty-log flag may have changed
                before = told.get(q.section.addr)
                m = self._mapping(q.section)
                if m is None:
                    self._untell(q.section.addr)
                else:
                    self._tell(q.section.addr, m)
                if before is not None and m is not None and before.flags != m.flags:
                    relogged.append((before, m))
        return Batch.of(removed, added, relogged)

    def _forget_view(self) -> None:
        """As if told that every range is gone (the next plan deletes every slot)."""
        self._told.clear()
        self._told_at.clear()

    def _tell(self, addr: int, m: SlotMapping) -> None:
        if addr not in self._told:
            bisect.insort(self._told_at, addr)
        self._told[addr] = m

    def _untell(self, addr: int) -> SlotMapping | None:
        gone = self._told.pop(addr, None)
        if gone is not None:
            del self._told_at[bisect.bisect_left(self._told_at, addr)]
        return gone

    # -- planning and execution -----------------------------------------------------------
    def desired(self) -> list[SlotMapping]:
        """The layout of the view as told, in gpa order."""
        return [self._told[a] for a in self._told_at]

    def plan_now(self, desired: list[SlotMapping] | None = None) -> Plan:
        """The plan a commit would execute now for the view as told (no I/O)."""
        want = self.desired() if desired is None else desired
        return plan(
            list(self._slots.values()),
            want,
            caps=self.caps,
            boundaries=self._cut_points() if self.tree_aware and want else (),
            qemu_like=self.qemu_like,
            merge_limit=self.merge_limit,
        )

    def pauses_for(self, p: Plan) -> bool:
        """Does this listener's mode pause the vCPUs for ``p``?  ``auto``: when an op
        is protected; ``quiesce``: when there is any op; never otherwise."""
        return (self.mode == "quiesce" and bool(p.ops)) or (self.mode == "auto" and p.needs_pause)

    def _cut_points(self, lo: int = 0, hi: int = ADDR_SPACE_END) -> list[int]:
        """Where the tree may cut a mapping later, inside ``[lo, hi)``: from the space's
        cached placements, recomputed only when those change."""
        gen = self.space.system.structure_generation
        if self._cuts is None or self._cuts[0] != gen:
            if (lo, hi) != (0, ADDR_SPACE_END):  # a window: walk only that part of the tree
                return sorted(c for c in cut_points(self.space.placements(lo, hi)) if lo <= c < hi)
            cuts = cut_points(self.space.placements())
            self._cuts = (gen, cuts, sorted(cuts))
        ordered = self._cuts[2]
        return ordered[bisect.bisect_left(ordered, lo) : bisect.bisect_left(ordered, hi)]

    def _told_within(self, lo: int, hi: int) -> dict[int, SlotMapping]:
        """The view as told inside ``[lo, hi)`` (mappings clipped to it), by gpa."""
        out: dict[int, SlotMapping] = {}
        j = max(bisect.bisect_right(self._told_at, lo) - 1, 0)
        while j < len(self._told_at) and self._told_at[j] < hi:
            m = self._told[self._told_at[j]]
            if m.end > lo:
                piece = (
                    m if lo <= m.gpa and m.end <= hi else m.piece(max(m.gpa, lo), min(m.end, hi))
                )
                out[piece.gpa] = piece
            j += 1
        return out

    def _windowed_plan(self, batch_windows: list[tuple[int, int]]) -> Plan:
        """Plan only what intersects the changed windows, widened until no slot and no
        mapping straddles their edges.  Everything outside is mapped as the view asks
        (the listener is in sync), so this equals the plan of the whole table."""
        wins = sorted(batch_windows)
        slot_starts = self._slot_starts
        while True:
            slots: dict[int, Slot] = {}
            want: dict[int, SlotMapping] = {}
            grown: list[tuple[int, int]] = []
            for lo, hi in wins:
                nlo, nhi = lo, hi
                i = max(bisect.bisect_right(slot_starts, lo) - 1, 0)
                while i < len(self._slot_at) and self._slot_at[i][0] < hi:
                    s = self._slots[self._slot_at[i][1]]
                    if s.mapping.end > lo:
                        slots[s.slot] = s
                        nlo, nhi = min(nlo, s.mapping.gpa), max(nhi, s.mapping.end)
                    i += 1
                j = max(bisect.bisect_right(self._told_at, lo) - 1, 0)
                while j < len(self._told_at) and self._told_at[j] < hi:
                    m = self._told[self._told_at[j]]
                    if m.end > lo:
                        want[m.gpa] = m
                        nlo, nhi = min(nlo, m.gpa), max(nhi, m.end)
                    j += 1
                if grown and nlo <= grown[-1][1]:
                    grown[-1] = (grown[-1][0], max(grown[-1][1], nhi))
                else:
                    grown.append((nlo, nhi))
            if grown == wins:
                break
            wins = grown
        if self.merge_limit:  # the slots touching a window: a new piece may absorb one
            for lo, hi in wins:
                i = bisect.bisect_left(slot_starts, lo) - 1
                j = bisect.bisect_left(slot_starts, hi)
                for k in (i, j):
                    if 0 <= k < len(self._slot_at):
                        s = self._slots[self._slot_at[k][1]]
                        if s.mapping.end == lo or s.mapping.gpa == hi:
                            slots[s.slot] = s
                            want.update(self._told_within(s.mapping.gpa, s.mapping.end))
        cuts: list[int] = []
        if self.tree_aware and want:
            if len(wins) > 8:
                self._cut_points()  # many windows: one cached walk of the whole tree is cheaper
            for lo, hi in wins:
                # the edges too, and regions that only touch them: a piece there may
                # absorb a neighbour unless the tree still cuts at that edge
                cuts.extend(self._cut_points(max(lo - 1, 0), hi + 1))
        outside = _Outside(self._slots, slots)
        # slot ids in the order the whole plan would try them: the ones it sees, the
        # unused ones, then the never used ones
        free_ids = heapq.merge(sorted(slots), self._holes, range(self._top, self.caps.nr_memslots))
        return plan(
            list(slots.values()),
            [want[g] for g in sorted(want)],
            caps=self.caps,
            boundaries=cuts,
            qemu_like=self.qemu_like,
            merge_limit=self.merge_limit,
            reserved=outside,
            reserved_count=len(self._slots) - len(slots),
            free_ids=free_ids,
        )

    def apply(
        self,
        callbacks: tuple[str, ...] = (),
        batch: Batch | None = None,
        windows: list[tuple[int, int]] | None = None,
    ) -> CommitReport:
        """Plan from the kernel's table to the view as told and execute the plan;
        ``windows``: only those changed since the last commit, which was in sync.

        On failure the table records what the kernel holds (see the module's
        invariant), the listener is out of sync, and :class:`CommitError` is raised.
        """
        with self._lock:
            t0 = time.perf_counter_ns()
            self._ioctl_ns = 0
            windowed = windows is not None and self._in_sync and len(windows) <= len(self._told)
            self._in_sync = False
            if windowed and windows is not None:
                p = self._windowed_plan(windows)
            else:
                p = self.plan_now()
            paused_ns = self._execute(p)
            assert all(self._slots.get(s.slot) == s for s in p.slots_after)
            assert windowed or len(self._slots) == len(p.slots_after)
            self._in_sync = True
            if not windowed:  # drop the blocks no mapping uses any more (O(n): not per window)
                live = {m.block for m in self._told.values()}
                self._blocks = {k: b for k, b in self._blocks.items() if k in live}
        report = CommitReport(
            p,
            paused_ns > 0,
            paused_ns,
            time.perf_counter_ns() - t0,
            callbacks,
            self.pauses_for(p),
            self._ioctl_ns,
            batch if batch is not None else Batch(),
        )
        self.reports.append(report)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("commit: %s", report.line())
        return report

    def sync_dirty_log(self) -> None:
        """Harvest every logging slot into :attr:`dirty` (safe while commits run on
        another thread; see ``_lock``)."""
        with self._lock:
            for s in list(self._slots.values()):
                if s.mapping.logging:
                    self._harvest(s.slot, s.mapping)

    def _harvest(self, slot: int, mapping: SlotMapping) -> None:
        t0 = time.perf_counter_ns()
        bitmap = self.vm.get_dirty_log(slot_number(self.as_id, slot))
        self._ioctl_ns += time.perf_counter_ns() - t0
        block = self._blocks.get(mapping.block)
        if block is not None:
            block.dirty.mark_pages(bitmap_pages(mapping, bitmap), ALL_CLIENTS)

    def _ioctl(self, slot: int, m: SlotMapping, *, delete: bool = False) -> None:
        """One KVM_SET_USER_MEMORY_REGION; on success the table records it."""
        t0 = time.perf_counter_ns()
        try:
            self.vm.set_user_memory_region(
                slot_number(self.as_id, slot),
                0 if delete else m.flags,
                m.gpa,
                0 if delete else m.size,
                m.hva,
            )
        finally:
            self._ioctl_ns += time.perf_counter_ns() - t0
        old = self._slots.pop(slot, None)
        if old is not None:
            k = bisect.bisect_left(self._slot_at, (old.mapping.gpa, slot))
            del self._slot_at[k]
            del self._slot_starts[k]
        if delete:
            bisect.insort(self._holes, slot)
        else:
            self._slots[slot] = Slot(slot, m)
            k = bisect.bisect_left(self._slot_at, (m.gpa, slot))
            self._slot_at.insert(k, (m.gpa, slot))
            self._slot_starts.insert(k, m.gpa)
            if slot >= self._top:
                self._holes.extend(range(self._top, slot))
                self._top = slot + 1
            elif old is None:
                del self._holes[bisect.bisect_left(self._holes, slot)]

    def _execute(self, p: Plan) -> int:
        """Run the plan; returns the ns vCPUs were paused.  Rolls back on failure."""
        vcpus = self.vcpus
        pause_all = vcpus is not None and self.pauses_for(p)
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
            log.error(
                "%s of slot %d (gpa %#x+%#x) failed: %s; %s",
                failed.op,
                failed.slot,
                m.gpa,
                m.size,
                e,
                f"rolled back {len(done)} ioctls" if rolled_back else f"rollback failed: {cause}",
            )
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
        self._ioctl(op.slot, op.mapping, delete=op.op == "delete")
        if op.harvest and op.old is not None and not exact:
            # a write between the harvest and the ioctl cannot be told apart: report all
            block = self._blocks.get(op.old.block)
            if block is not None:
                block.dirty.mark_pages(slot_pages(op.old), ALL_CLIENTS)

    def _rollback(self, done: list[SlotOp]) -> tuple[bool, str]:
        for op in reversed(done):
            try:
                if op.op == "create":
                    self._ioctl(op.slot, op.mapping, delete=True)
                else:
                    assert op.old is not None
                    self._ioctl(op.slot, op.old)
            except KvmError as e:
                return False, f"undoing {op.op} of slot {op.slot}: {e}"
        return True, ""
