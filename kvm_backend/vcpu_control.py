"""What a memory listener may ask of whatever runs the vCPUs, and what the runner
asks back of a listener that repairs faults instead of pausing.

Both are protocols so that the runner (this layer) never imports a listener and a
listener never depends on the concrete runner.
"""

from __future__ import annotations

from typing import Final, Protocol

from kvm_backend.exits import MmioExit, StopExit

NOT_REPAIRED: Final = object()
"""Returned by :meth:`FaultRepair.mmio` when the exit is left to the device handler."""


class FaultRepair(Protocol):
    """Completes exits caused by a commit in progress (optimistic commits).

    ``generation`` is sampled by a vCPU thread before each KVM_RUN; the runner hands
    it back with every exit, so the repairer can tell whether a commit ran meanwhile.
    """

    @property
    def generation(self) -> int: ...

    def mmio(self, exit: MmioExit, entry_generation: int) -> object:
        """Read bytes (a read), None (a completed write) or :data:`NOT_REPAIRED`."""
        ...

    def fetch_failed(self, exit: StopExit, entry_generation: int) -> bool:
        """True if the vCPU should simply re-enter the guest."""
        ...


class VcpuControl(Protocol):
    def pause_all(self) -> None:
        """Return once no vCPU is inside KVM_RUN (may be called from a vCPU thread)."""
        ...

    def resume_all(self) -> None: ...

    def set_commit_window(self, window: FaultRepair | None) -> None:
        """Repair MMIO exits / failed fetches during ``window``'s commits."""
        ...
