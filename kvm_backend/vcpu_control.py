"""What the KVM listener needs from whatever runs the vCPUs."""

from __future__ import annotations

from typing import Protocol

from kvm_backend.commit_window import CommitWindow


class VcpuControl(Protocol):
    def pause_all(self) -> None:
        """Return once no vCPU is inside KVM_RUN (may be called from a vCPU thread)."""
        ...

    def resume_all(self) -> None: ...

    def set_commit_window(self, window: CommitWindow | None) -> None:
        """Repair MMIO exits / failed fetches during ``window``'s commits."""
        ...
