"""Host memory blocks backing RAM regions (QEMU's RAMBlock).

A block is one anonymous ``mmap`` of ``max_length`` bytes made through libc, so its
host address is fixed for its whole life: a resizable block grows and shrinks
its ``used_length`` inside the reservation and never moves.  Blocks are closed
deterministically (``close()`` or a ``with`` block), never by the garbage collector.
"""

from __future__ import annotations

import errno as _errno
import itertools
import os
import threading
from types import TracebackType
from typing import Any

from flatview._libc import (
    MADV_DONTNEED,
    MAP_ANONYMOUS,
    MAP_FAILED,
    MAP_NORESERVE,
    MAP_PRIVATE,
    PROT_READ,
    PROT_WRITE,
    ffi,
    libc,
)
from flatview.dirty import DirtyBitmaps
from flatview.errors import FlatviewError

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
"""The host's page size: KVM slots, their host addresses and dirty bitmaps use it."""

_block_ids = itertools.count(1)

MAX_BLOCK = 1 << 47
"""No block can be larger than the user half of x86-64's 48-bit address space."""


class HostMemoryError(FlatviewError, OSError):
    """Allocating or releasing host memory failed."""

    def __init__(self, message: str, err: int) -> None:
        super().__init__(err, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def page_align_up(n: int) -> int:
    return (n + PAGE_SIZE - 1) // PAGE_SIZE * PAGE_SIZE


class RamBlock:
    """Anonymous host memory: ``host_addr`` stays valid until ``close()``."""

    def __init__(self, name: str, used_length: int, max_length: int | None = None) -> None:
        for what, n in (("size", used_length), ("max_size", max_length)):
            if n is None:
                continue
            if not isinstance(n, int) or isinstance(n, bool):
                raise HostMemoryError(
                    f"ram block {name!r}: {what} must be an integer, got {n!r}", _errno.EINVAL
                )
            if n < 0:
                raise HostMemoryError(f"ram block {name!r}: negative {what} {n}", _errno.EINVAL)
            if n > MAX_BLOCK:
                raise HostMemoryError(
                    f"ram block {name!r}: {what} {n:#x} exceeds what this host can map "
                    f"({MAX_BLOCK:#x})",
                    _errno.ENOMEM,
                )
        resizable = max_length is not None
        max_len = used_length if max_length is None else page_align_up(max_length)
        if max_len < used_length:
            raise HostMemoryError(
                f"ram block {name!r}: size {used_length:#x} exceeds max_size {max_len:#x}",
                _errno.EINVAL,
            )
        self.name = name
        self.id = next(_block_ids)
        """Unique for the life of the process (never reused, unlike ``id()``)."""
        self.resizable = resizable
        self.max_length = max_len
        self._used_length = used_length
        self._mapped = max(page_align_up(max_len), PAGE_SIZE)
        ptr = libc.mmap(
            ffi.NULL,
            self._mapped,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
            -1,
            0,
        )
        if int(ffi.cast("uintptr_t", ptr)) == MAP_FAILED:
            err = ffi.errno
            raise HostMemoryError(
                f"ram block {name!r}: mmap of {self._mapped:#x} bytes failed: {os.strerror(err)}",
                err,
            )
        self._ptr: Any = ffi.cast("unsigned char *", ptr)
        self.host_addr = int(ffi.cast("uintptr_t", ptr))
        self._lock = threading.Lock()
        self._closed = False
        self.dirty = DirtyBitmaps(PAGE_SIZE)
        """Dirty pages per client (see :mod:`flatview.dirty`)."""

    # -- size ------------------------------------------------------------------
    @property
    def used_length(self) -> int:
        return self._used_length

    def resize(self, new_length: int) -> None:
        """Change the used length inside the reservation (host address unchanged).

        Bytes past the new length are discarded (``MADV_DONTNEED``), so a later
        grow exposes zeroes, as a hot-plugged DIMM would.
        """
        if not self.resizable:
            raise HostMemoryError(f"ram block {self.name!r} is not resizable", _errno.EINVAL)
        if not 0 <= new_length <= self.max_length:
            raise HostMemoryError(
                f"ram block {self.name!r}: size {new_length:#x} outside [0, {self.max_length:#x}]",
                _errno.EINVAL,
            )
        if new_length < self._used_length:
            start = page_align_up(new_length)
            end = page_align_up(self._used_length)
            if end > start:
                libc.madvise(self._ptr + start, end - start, MADV_DONTNEED)
        self._used_length = new_length

    # -- access ----------------------------------------------------------------
    def _check(self, offset: int, size: int) -> None:
        if self._closed:
            raise HostMemoryError(f"ram block {self.name!r} is closed", _errno.EBADF)
        if offset < 0 or size < 0 or offset + size > self._used_length:
            raise HostMemoryError(
                f"ram block {self.name!r}: access [{offset:#x}, +{size:#x}) outside "
                f"used length {self._used_length:#x}",
                _errno.EFAULT,
            )

    def read(self, offset: int, size: int) -> bytes:
        self._check(offset, size)
        return bytes(ffi.buffer(self._ptr + offset, size))

    def write(self, offset: int, data: bytes) -> None:
        self._check(offset, len(data))
        ffi.memmove(self._ptr + offset, data, len(data))

    def buffer(self) -> memoryview:
        """A writable view of the used length (invalid after ``close()``)."""
        self._check(0, 0)
        return memoryview(ffi.buffer(self._ptr, self._used_length))

    # -- lifetime --------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            libc.munmap(self._ptr, self._mapped)

    def __enter__(self) -> RamBlock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"RamBlock({self.name!r}, used={self._used_length:#x}, max={self.max_length:#x}, "
            f"host={self.host_addr:#x})"
        )
