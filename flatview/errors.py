"""The exception hierarchy shared by every flatview package.

Every error the library raises derives from :class:`FlatviewError`, so a VMM can
catch one type.  Errors that come from the kernel (see ``kvm_backend.errors``)
additionally carry ``errno`` and the slot or range involved.
"""

from __future__ import annotations


class FlatviewError(Exception):
    """Base class of every error raised by flatview, listeners and kvm_backend."""


class RegionError(FlatviewError, ValueError):
    """A region mutation or construction was refused; nothing was changed."""


class ConfigError(FlatviewError, ValueError):
    """A constructor argument was refused (a listener's mode, a slot size, ...)."""


class TransactionError(FlatviewError, RuntimeError):
    """Transactions were misused (commit without begin, mutation during commit)."""


class AccessError(FlatviewError):
    """A guest-physical access through an AddressSpace could not be completed."""

    def __init__(self, message: str, addr: int, size: int) -> None:
        super().__init__(message)
        self.addr = addr
        self.size = size


class InputError(FlatviewError):
    """A problem in a file the user gave (scenario, dump): one line naming the place."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")
        self.path = path
        self.line = line


def read_input(path: str) -> str:
    """A user's input file as text, or an :class:`InputError` saying why not."""
    from pathlib import Path

    try:
        return Path(path).read_text()
    except OSError as e:
        raise InputError(path, 0, f"cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(path, 0, "not a text file") from None
