"""The project's one cffi binding of libc (ABI mode: no compiler).

Host memory blocks use ``mmap``/``munmap``/``madvise``; the KVM bindings in
``kvm_backend.abi`` add their structs to this same :data:`ffi` and call ``ioctl``,
``open`` and ``close`` through :data:`libc` (functions declared here release the
GIL while they run).
"""

from __future__ import annotations

from typing import Any

from cffi import FFI

ffi = FFI()
ffi.cdef(
    """
    void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset);
    int munmap(void *addr, size_t length);
    int madvise(void *addr, size_t length, int advice);
    int ioctl(int fd, unsigned long request, ...);
    int open(const char *path, int flags);
    int close(int fd);
    """
)
libc: Any = ffi.dlopen(None)

PROT_READ, PROT_WRITE = 0x1, 0x2
MAP_SHARED, MAP_PRIVATE = 0x01, 0x02
MAP_ANONYMOUS = 0x20
MAP_NORESERVE = 0x4000
MADV_DONTNEED = 4
MAP_FAILED = 2**64 - 1
O_RDWR = 0o2
O_CLOEXEC = 0o2000000
