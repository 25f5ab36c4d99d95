"""Typed errors from KVM: each carries errno, the ioctl name and its arguments."""

from __future__ import annotations

import os
from typing import Any

from flatview.errors import FlatviewError


class KvmError(FlatviewError, OSError):
    """An ioctl on /dev/kvm, a VM or a vCPU failed."""

    def __init__(self, ioctl: str, err: int, **args: Any) -> None:
        self.ioctl = ioctl
        self.args_ = dict(args)
        detail = ", ".join(
            f"{k}={v:#x}" if isinstance(v, int) and k != "slot" else f"{k}={v}"
            for k, v in args.items()
        )
        msg = f"{ioctl}({detail}) failed: [errno {err}] {os.strerror(err)}"
        OSError.__init__(self, err, msg)
        self.message = msg

    def __str__(self) -> str:
        return self.message


class _SlotRangeError(KvmError):
    """A KvmError about one memslot: ``slot``, ``gpa``, ``size`` and ``flags``."""

    @property
    def slot(self) -> int:
        return int(self.args_.get("slot", -1))

    @property
    def gpa(self) -> int:
        return int(self.args_.get("gpa", 0))

    @property
    def size(self) -> int:
        return int(self.args_.get("size", 0))

    @property
    def flags(self) -> int:
        return int(self.args_.get("flags", 0))


class MemslotError(_SlotRangeError):
    """KVM_SET_USER_MEMORY_REGION(2) was refused; names the slot and range."""


class KvmUnavailable(FlatviewError):
    """/dev/kvm cannot be opened here (the reason says why)."""


class CommitError(_SlotRangeError):
    """A memslot ioctl of a commit failed; the commit was rolled back.

    ``op`` is the failed operation (create/delete/flags/move), ``slot`` its id and
    ``gpa``/``size``/``flags`` its range; ``rolled_back`` is False only if undoing
    the earlier ioctls failed too (the slot table then differs from the last view).
    """

    def __init__(
        self, op: str, err: int, *, rolled_back: bool = True, cause: str = "", **args: Any
    ) -> None:
        super().__init__(f"commit {op}", err, **args)
        self.op = op
        self.rolled_back = rolled_back
        if cause:
            self.message += f" ({cause})"
        self.message += "; rolled back" if rolled_back else "; ROLLBACK FAILED"
