"""A reshaping workload for the race harness: commits that change the KVM slot
layout under running vCPUs while the guest-visible contents stay the same.

The sweep range is ``data`` seen through two unmergeable aliases ``lo``/``hi``
(moving their boundary splits, merges, grows and shrinks slots), a read-only
overlay ``shadow`` (toggling it remaps pages: a READONLY change is delete +
create), a ``mover`` RAM region elsewhere (MOVE ioctls) and dirty logging on
``data`` (flags-only ioctls).  Every page keeps its gpa -> host mapping, so any
fault the guest sees is the commit's fault.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs

from flatview.address_space import AddressSpace
from flatview.hostmem import PAGE_SIZE as PAGE
from flatview.region import MemoryRegion
from kvm_backend.kvm import Kvm
from kvm_backend.testing.sweep import SweepHarness, SweepResult
from listeners.kvm_listener import CommitReport, KvmMemoryListener, Mode
from listeners.slot_layout import desired_mappings

KINDS = ("boundary", "shadow", "move", "log")


class Reshaper:
    def __init__(self, h: SweepHarness, seed: int = 0) -> None:
        m = h.memory
        self.h = h
        self.rng = random.Random(seed)
        self.root = m.container("system", 2**64)
        self.root.add_subregion(0, h.system_region)
        n = h.pages
        self.k = n // 2
        self.lo = m.alias("lo", h.data_region, 0, self.k * PAGE)
        self.hi = m.alias("hi", h.data_region, self.k * PAGE, (n - self.k) * PAGE)
        for a in (self.lo, self.hi):
            a.set_unmergeable(True)
        self.root.add_subregion(h.base, self.lo)
        self.root.add_subregion(h.base + self.k * PAGE, self.hi)
        self.shadow = m.alias("shadow", h.data_region, PAGE, 4 * PAGE)
        self.shadow.set_readonly(True)
        self.shadow.set_enabled(False)
        self.root.add_subregion(h.base + PAGE, self.shadow, 1)
        self.mover: MemoryRegion = m.ram("mover", 4 * PAGE)
        self.mover_slots = [h.base + (n + 64 + 16 * i) * PAGE for i in range(3)]
        self.root.add_subregion(self.mover_slots[0], self.mover)
        self.space = AddressSpace(self.root, "memory")
        self.counts = dict.fromkeys(KINDS, 0)
        self._vga_logging = False

    def step(self) -> str:
        kind = self.rng.choice(KINDS)
        self.do(kind)
        return kind

    def do(self, kind: str) -> None:
        """One commit of ``kind`` (one of KINDS)."""
        self.counts[kind] += 1
        n = self.h.pages
        if kind == "boundary":
            k = self.rng.randrange(1, n)
            with self.h.memory.transaction():
                if k > self.k:
                    self.hi.set_size((n - k) * PAGE)
                    self.hi.set_alias_offset(k * PAGE)
                else:
                    self.hi.set_alias_offset(k * PAGE)
                    self.hi.set_size((n - k) * PAGE)
                self.hi.set_address(self.h.base + k * PAGE)
                self.lo.set_size(k * PAGE)
            self.k = k
        elif kind == "shadow":
            first = self.rng.randrange(1, n - 1)
            size = self.rng.randrange(1, min(8, n - first) + 1)
            with self.h.memory.transaction():
                self.shadow.set_enabled(not self.shadow.enabled)
                self.shadow.set_size(min(self.shadow.size, size * PAGE))
                self.shadow.set_alias_offset(first * PAGE)
                self.shadow.set_size(size * PAGE)
                self.shadow.set_address(self.h.base + first * PAGE)
        elif kind == "move":
            here = self.mover.addr
            self.mover.set_address(self.rng.choice([a for a in self.mover_slots if a != here]))
        elif kind == "log":
            if self._vga_logging:
                self.h.data_region.log_stop("vga")
            else:
                self.h.data_region.log_start("vga")
            self._vga_logging = not self._vga_logging
        else:
            raise ValueError(f"unknown reshape kind {kind!r}")


@attrs.frozen
class ReshapeRun:
    """One race run: the guests' verdict and the listener's reports."""

    result: SweepResult
    reports: tuple[CommitReport, ...]
    counts: dict[str, int]
    progressed: bool
    """The guests kept sweeping after the last commit."""
    window_wait_ns: int = 0
    repaired_mmio: int = 0
    slot_ratios: tuple[float, ...] = ()
    """After each commit: the listener's slot count over the slot count a QEMU-style
    table would hold for the same view (one slot per RAM flat range)."""


def run_reshape(
    kvm: Kvm,
    nvcpus: int,
    mode: Mode,
    commits: int,
    seed: int,
    *,
    on_commit: Callable[[int], None] | None = None,
) -> ReshapeRun:
    """``nvcpus`` vCPUs sweep while ``commits`` random reshaping commits run in ``mode``."""
    h = SweepHarness(kvm, nvcpus, direct=False)
    try:
        shaper = Reshaper(h, seed)
        kl = KvmMemoryListener(h.vm, shaper.space, vcpus=h.runner, mode=mode)
        h.start()
        h.wait_sweeps(2)
        first = len(kl.reports)
        ratios: list[float] = []
        for i in range(commits):
            shaper.step()
            qemu_style = len(desired_mappings(shaper.space.flatview))
            ratios.append(len(kl.slots) / max(qemu_style, 1))
            if on_commit is not None:
                on_commit(i)
        progressed = h.wait_sweeps(2)
        result = h.finish()
        w = kl.window
        return ReshapeRun(
            result,
            tuple(kl.reports[first:]),
            dict(shaper.counts),
            progressed,
            w.wait_ns if w is not None else 0,
            w.repaired_mmio if w is not None else 0,
            tuple(ratios),
        )
    finally:
        h.close()
