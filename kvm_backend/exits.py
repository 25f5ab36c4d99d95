"""vCPU exits as frozen values (the handler interface is the runner's: ``runner.ExitHandler``)."""

from __future__ import annotations

import attrs


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
