"""The vCPU runner: one thread per vCPU in KVM_RUN, and ``pause_all``/``resume_all``.

Kick protocol (see docs/vcpu-runner.md):

1. the controller sets ``pause requested``;
2. for each other vCPU: ``kvm_run.immediate_exit = 1``, then ``pthread_kill`` —
   the signal ends a KVM_RUN in progress, ``immediate_exit`` makes the next one
   return at once, so there is no window in which a kick is lost;
3. each vCPU thread sees the request, reports "parked" on an eventfd and blocks
   in ``read()`` on its own eventfd (GIL released);
4. the controller waits for every report; ``resume_all`` clears
   ``immediate_exit`` while all are parked and wakes them.

``pause_all`` may be called from a vCPU's own exit handler (it then counts as
parked), and nests.  ``KVM_RUN`` is issued through cffi, never ``fcntl.ioctl``.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol

from kvm_backend import abi
from kvm_backend.abi import ffi
from kvm_backend.errors import KvmError
from kvm_backend.exits import IoExit, MmioExit, StopExit
from kvm_backend.kvm import Vcpu
from kvm_backend.vcpu_control import NOT_REPAIRED, FaultRepair

KICK_SIGNAL = signal.SIGUSR1


def _efd_read(fd: int) -> None:
    """Blocking eventfd read (GIL released); a kick's EINTR is retried."""
    while True:
        try:
            os.eventfd_read(fd)
            return
        except InterruptedError:
            continue


def _efd_write(fd: int) -> None:
    while True:
        try:
            os.eventfd_write(fd, 1)
            return
        except InterruptedError:
            continue


class _KickSignal:
    """Installs a no-op Python handler for the kick signal while runners exist.

    A real handler is needed: with SIG_IGN the kernel drops the signal (no EINTR),
    and SIG_DFL kills the process.  The previous handler is restored afterwards.
    """

    _lock = threading.Lock()
    _users = 0
    _previous: Any = None

    @staticmethod
    def _noop(signum: int, frame: object) -> None:
        return None

    @classmethod
    def acquire(cls) -> None:
        with cls._lock:
            if cls._users == 0:
                if threading.current_thread() is not threading.main_thread():
                    raise KvmError("VcpuRunner.start (not on the main thread)", _errno.EPERM)
                cls._previous = signal.signal(KICK_SIGNAL, cls._noop)
            cls._users += 1

    @classmethod
    def release(cls) -> None:
        with cls._lock:
            cls._users -= 1
            if cls._users == 0 and threading.current_thread() is threading.main_thread():
                signal.signal(KICK_SIGNAL, cls._previous)
                cls._previous = None


class VcpuThread:
    """Per-vCPU state; handlers receive it (``index``, ``vcpu``, ``stop()``)."""

    def __init__(self, runner: VcpuRunner, vcpu: Vcpu) -> None:
        self.runner = runner
        self.vcpu = vcpu
        self.index = vcpu.index
        self.exits: dict[str, int] = {}
        self.last_stop: StopExit | None = None
        self.stop_requested = False
        self.entry_generation = 0
        self.alive = False
        self.wake_fd = os.eventfd(0, os.EFD_SEMAPHORE | os.EFD_CLOEXEC)
        self.thread = threading.Thread(
            target=runner._loop, args=(self,), name=f"vcpu{vcpu.index}", daemon=True
        )

    def stop(self) -> None:
        """End this vCPU's loop after the current exit (call from its handler)."""
        self.stop_requested = True


class VcpuRunner:
    """Runs vCPUs on threads and implements the ``VcpuControl`` interface."""

    def __init__(self, vcpus: list[Vcpu], handler: ExitHandler) -> None:
        self.handler = handler
        self.threads = [VcpuThread(self, v) for v in vcpus]
        self._state = threading.Lock()
        self._control = threading.RLock()
        self._pause_requested = False
        self._pause_depth = 0
        self._paused: list[VcpuThread] = []
        self._parked_fd = os.eventfd(0, os.EFD_SEMAPHORE | os.EFD_CLOEXEC)
        self._local = threading.local()
        self._started = False
        self._closed = False
        self.pause_latencies_ns: list[int] = []
        """kick -> all parked, one entry per outermost pause_all."""
        self.pause_count = 0
        self.commit_window: FaultRepair | None = None
        """Set by an optimistic KVM listener: MMIO exits and failed fetches during
        one of its commits are repaired against the new layout."""

    # -- lifetime ---------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            raise KvmError("VcpuRunner.start (already started)", _errno.EBUSY)
        _KickSignal.acquire()
        self._started = True
        for t in self.threads:
            t.alive = True
            t.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every vCPU, join the threads, restore the signal handler."""
        if not self._started or self._closed:
            return
        for t in self.threads:
            t.stop_requested = True
        deadline = time.monotonic() + timeout
        while any(t.thread.is_alive() for t in self.threads):
            for t in self.threads:
                if t.thread.is_alive():
                    self._kick(t)
            for t in self.threads:
                t.thread.join(0.01)
                if t.thread.is_alive() and self._pause_depth:
                    _efd_write(t.wake_fd)
            if time.monotonic() > deadline:
                raise KvmError("VcpuRunner.stop (vCPU threads did not end)", _errno.ETIMEDOUT)
        self._closed = True
        _KickSignal.release()
        for t in self.threads:
            os.close(t.wake_fd)
        os.close(self._parked_fd)

    def __enter__(self) -> VcpuRunner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every vCPU thread has ended; True if they all did."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self.threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            t.thread.join(left)
        return not any(t.thread.is_alive() for t in self.threads)

    # -- VcpuControl -------------------------------------------------------------
    def set_commit_window(self, window: FaultRepair | None) -> None:
        self.commit_window = window

    @property
    def paused(self) -> bool:
        return self._pause_depth > 0

    def current(self) -> VcpuThread | None:
        """The VcpuThread calling, if called from a vCPU thread of this runner."""
        return getattr(self._local, "vcpu", None)

    def pause_all(self) -> None:
        """Return once no vCPU is inside KVM_RUN (nests; pair with resume_all)."""
        me = self.current()
        while not self._control.acquire(timeout=0.0002):
            if me is not None and self._pause_requested:
                self._park(me)
        if self._pause_depth:
            self._pause_depth += 1
            return
        t0 = time.monotonic_ns()
        with self._state:
            self._pause_requested = True
            targets = [t for t in self.threads if t.alive and t is not me]
            self._paused = targets
        for t in targets:
            self._kick(t)
        for _ in targets:
            _efd_read(self._parked_fd)
        self._pause_depth = 1
        self.pause_count += 1
        self.pause_latencies_ns.append(time.monotonic_ns() - t0)

    def resume_all(self) -> None:
        if self._pause_depth == 0:
            raise KvmError("VcpuRunner.resume_all (not paused)", _errno.EINVAL)
        self._pause_depth -= 1
        if self._pause_depth == 0:
            for t in self.threads:
                if t.vcpu.run is not None:
                    t.vcpu.run.immediate_exit = 0
            with self._state:
                self._pause_requested = False
                paused, self._paused = self._paused, []
            for t in paused:
                _efd_write(t.wake_fd)
        self._control.release()

    @contextlib.contextmanager
    def paused_vcpus(self) -> Iterator[None]:
        self.pause_all()
        try:
            yield
        finally:
            self.resume_all()

    # -- the vCPU thread ----------------------------------------------------------
    def _kick(self, t: VcpuThread) -> None:
        run = t.vcpu.run
        if run is not None:
            run.immediate_exit = 1
        ident = t.thread.ident
        if ident is not None and t.thread.is_alive():
            with contextlib.suppress(ProcessLookupError):
                signal.pthread_kill(ident, KICK_SIGNAL)

    def _park(self, t: VcpuThread) -> None:
        _efd_write(self._parked_fd)
        _efd_read(t.wake_fd)

    def _loop(self, t: VcpuThread) -> None:
        self._local.vcpu = t
        vcpu = t.vcpu
        run = vcpu.run
        try:
            while not t.stop_requested:
                if self._pause_requested:
                    self._park(t)
                    continue
                window = self.commit_window
                t.entry_generation = window.generation if window is not None else 0
                err = vcpu.run_once()
                if err:
                    if err in (_errno.EINTR, _errno.EAGAIN):
                        continue
                    exit_ = StopExit("ERROR", -1, errno=err, rip=self._rip(vcpu))
                    self._count(t, "ERROR")
                    t.last_stop = exit_
                    if not self.handler.stop(t, exit_):
                        break
                    continue
                if not self._dispatch(t, run):
                    break
        finally:
            with self._state:
                t.alive = False
                # a pause in progress counts on this thread: report it as parked
                if self._pause_requested and t in self._paused:
                    _efd_write(self._parked_fd)

    @staticmethod
    def _count(t: VcpuThread, name: str) -> None:
        t.exits[name] = t.exits.get(name, 0) + 1

    @staticmethod
    def _rip(vcpu: Vcpu) -> int | None:
        try:
            return int(vcpu.get_regs().rip)
        except KvmError:
            return None

    def _dispatch(self, t: VcpuThread, run: Any) -> bool:
        reason = int(run.exit_reason)
        name = abi.EXIT_NAMES.get(reason, str(reason))
        self._count(t, name)
        if reason == abi.KVM_EXIT_IO:
            io = run.u.io
            n = int(io.size) * int(io.count)
            buf = t.vcpu.run_bytes + int(io.data_offset)
            is_write = int(io.direction) == abi.KVM_EXIT_IO_OUT
            data = bytes(ffi.buffer(buf, n)) if is_write else b""
            ret = self.handler.io(
                t, IoExit(int(io.port), is_write, int(io.size), int(io.count), data)
            )
            if not is_write:
                ffi.memmove(buf, (ret or b"\xff" * n)[:n].ljust(n, b"\xff"), n)
            return True
        if reason == abi.KVM_EXIT_MMIO:
            m = run.u.mmio
            length = int(m.len)
            is_write = bool(m.is_write)
            data = bytes(ffi.buffer(m.data, length)) if is_write else b""
            exit_m = MmioExit(int(m.phys_addr), is_write, length, data)
            window = self.commit_window
            repaired = (
                window.mmio(exit_m, t.entry_generation) if window is not None else NOT_REPAIRED
            )
            if repaired is not NOT_REPAIRED:
                self._count(t, "MMIO_REPAIRED")
                if not is_write:
                    assert isinstance(repaired, bytes)
                    ffi.memmove(m.data, repaired, length)
                return True
            ret = self.handler.mmio(t, exit_m)
            if not is_write:
                ffi.memmove(
                    m.data, (ret or b"\xff" * length)[:length].ljust(length, b"\xff"), length
                )
            return True
        if reason == abi.KVM_EXIT_INTR:
            return True
        suberror = 0
        words: tuple[int, ...] = ()
        if reason == abi.KVM_EXIT_INTERNAL_ERROR:
            suberror = int(run.u.internal.suberror)
            nd = min(int(run.u.internal.ndata), 16)
            words = tuple(int(run.u.internal.data[i]) for i in range(nd))
        elif reason == abi.KVM_EXIT_SYSTEM_EVENT:
            ev = run.u.system_event
            nd = min(int(ev.ndata), 16)
            words = (int(ev.type), *(int(ev.data[i]) for i in range(nd)))
        elif reason == abi.KVM_EXIT_MEMORY_FAULT:
            mf = run.u.memory_fault
            words = (int(mf.flags), int(mf.gpa), int(mf.size))
        exit_ = StopExit(name, reason, suberror, words, self._rip(t.vcpu))
        window = self.commit_window
        if window is not None and window.fetch_failed(exit_, t.entry_generation):
            self._count(t, "FETCH_REPAIRED")
            return True
        t.last_stop = exit_
        return bool(self.handler.stop(t, exit_))


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
