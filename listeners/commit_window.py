"""Optimistic commits: fault repair instead of pausing vCPUs.

The KVM listener opens a window (``begin``) before the ioctls of a commit that
unmaps bytes still mapped afterwards, and closes it (``end``) after the last one.
A vCPU that exits with an MMIO access, or with a failed instruction fetch, while
a window is open — or that entered KVM_RUN before a window it did not see — waits
for the window to close and then completes the access against the *new* layout:
RAM is read from or written to its backing block, anything else goes to the
device handler as usual; a failed fetch is simply re-entered.  A guest can then
not tell that an update happened, and vCPUs that do not touch the changing
ranges are never stopped.

Limit (measured on shadow-paging hosts): an I/O instruction that itself executes
from a range being re-slotted can be turned into #UD by KVM without an exit;
keep the guest's I/O instructions in memory that does not change.
"""

from __future__ import annotations

import threading
import time

from flatview.address_space import AddressSpace
from kvm_backend.exits import MmioExit, StopExit
from kvm_backend.vcpu_control import NOT_REPAIRED


class CommitWindow:
    def __init__(self, address_space: AddressSpace) -> None:
        self.address_space = address_space
        self._cond = threading.Condition()
        self._open = False
        self.generation = 0
        self.repaired_mmio = 0
        self.repaired_fetch = 0
        self.wait_ns = 0
        """Total time vCPU threads waited for a window to close."""

    # -- the committer ---------------------------------------------------------
    def begin(self) -> None:
        with self._cond:
            self._open = True
            self.generation += 1

    def end(self) -> None:
        with self._cond:
            self._open = False
            self._cond.notify_all()

    # -- the vCPU threads --------------------------------------------------------
    def _settle(self, entry_generation: int) -> bool:
        """True if the exit may come from a commit: wait for its window to close."""
        with self._cond:
            if not self._open and self.generation == entry_generation:
                return False
            t0 = time.perf_counter_ns()
            while self._open:
                self._cond.wait()
            self.wait_ns += time.perf_counter_ns() - t0
            return True

    def mmio(self, exit: MmioExit, entry_generation: int) -> object:
        """Complete an MMIO exit against the new layout if it is RAM there; else
        ``NOT_REPAIRED`` (the device handler takes it)."""
        if not self._settle(entry_generation):
            return NOT_REPAIRED
        fr = self.address_space.flatview.lookup(exit.addr)
        if fr is None or fr.addr + fr.size < exit.addr + exit.length:
            return NOT_REPAIRED
        block = fr.region.ram_block
        if block is None or not fr.ram_readable:
            return NOT_REPAIRED
        offset = fr.offset_in_region + (exit.addr - fr.addr)
        self.repaired_mmio += 1
        if exit.is_write:
            if not fr.ram_writable:
                return NOT_REPAIRED  # a write the new layout does not accept
            block.write(offset, exit.data[: exit.length])
            if fr.dirty_log_mask:
                block.dirty.mark(offset, exit.length, fr.dirty_log_mask)
            return None
        return block.read(offset, exit.length)

    def fetch_failed(self, exit: StopExit, entry_generation: int) -> bool:
        """True if a failed fetch / emulation exit should simply be re-entered."""
        if exit.reason != "INTERNAL_ERROR" or not self._settle(entry_generation):
            return False
        self.repaired_fetch += 1
        return True
