"""vCPU exits as frozen values, and the handler interface the runner dispatches to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import attrs

if TYPE_CHECKING:
    from kvm_backend.runner import VcpuThread


@attrs.frozen
class IoExit:
    """Port I/O: ``data`` holds what an OUT wrote (``size * count`` bytes)."""

    port: int
    is_write: bool
    size: int
    count: int
    data: bytes


@attrs.frozen
class MmioExit:
    """An access KVM could not satisfy from a memslot (a hole or a read-only slot)."""

    addr: int
    is_write: bool
    length: int
    data: bytes


@attrs.frozen
class StopExit:
    """Any other exit: HLT, SHUTDOWN, INTERNAL_ERROR (with suberror and data), ...

    ``errno`` is set when KVM_RUN itself failed (``reason`` is then ``"ERROR"``).
    """

    reason: str
    code: int
    suberror: int = 0
    data: tuple[int, ...] = ()
    rip: int | None = None
    errno: int = 0


class ExitHandler(Protocol):
    """Device code: called on the vCPU's own thread (keep it short: GIL)."""

    def io(self, vcpu: VcpuThread, exit: IoExit) -> bytes | None:
        """Handle port I/O; for IN return ``size * count`` bytes."""
        ...

    def mmio(self, vcpu: VcpuThread, exit: MmioExit) -> bytes | None:
        """Handle MMIO; for a read return ``length`` bytes."""
        ...

    def stop(self, vcpu: VcpuThread, exit: StopExit) -> bool:
        """Any other exit; return True to re-enter the guest, False to end the vCPU."""
        ...


class NullHandler:
    """Ignores I/O, reads MMIO as all-ones, ends a vCPU on any other exit."""

    def io(self, vcpu: VcpuThread, exit: IoExit) -> bytes | None:
        return None if exit.is_write else b"\xff" * (exit.size * exit.count)

    def mmio(self, vcpu: VcpuThread, exit: MmioExit) -> bytes | None:
        return None if exit.is_write else b"\xff" * exit.length

    def stop(self, vcpu: VcpuThread, exit: StopExit) -> bool:
        return False
