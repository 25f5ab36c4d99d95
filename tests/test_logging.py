"""The library logs through ``logging`` and is silent until the application
configures it: each commit's plan at DEBUG, dropped or trimmed RAM ranges at
WARNING, rollbacks at ERROR; ``flatview -v`` turns it on."""

from __future__ import annotations

import errno
import logging
import subprocess
import sys

import pytest

from flatview import AddressSpace, MemorySystem
from kvm_backend import SimVm
from kvm_backend.errors import CommitError
from kvm_backend.testing.fault_injection import FaultInjector
from listeners import KvmMemoryListener
from tests.test_cli import ROOT

MISALIGNED = """
from flatview import AddressSpace, MemorySystem
from kvm_backend import SimVm
from listeners import KvmMemoryListener
s = MemorySystem()
root = s.container("system", 1 << 32)
root.add_subregion(0x10000800, s.ram("odd", 0x3000))
KvmMemoryListener(SimVm(), AddressSpace(root, "memory"))
"""


def test_the_library_is_silent_until_logging_is_configured() -> None:
    p = subprocess.run(
        [sys.executable, "-c", MISALIGNED], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0 and p.stderr == ""


def test_dropped_and_trimmed_ram_ranges_are_warnings_and_each_commit_a_debug_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    s = MemorySystem()
    root = s.container("system", 1 << 32)
    root.add_subregion(0x10000800, s.ram("odd", 0x3000))
    ram = s.ram("ram", 0x4000)
    root.add_subregion(0x20000000, s.alias("short", ram, 0, 0x3800))
    KvmMemoryListener(SimVm(), AddressSpace(root, "memory"))
    warnings = sorted(r.message for r in caplog.records if r.levelno == logging.WARNING)
    assert len(warnings) == 2
    assert warnings[0].startswith("odd: RAM range 0x10000800+0x3000 dropped")
    assert warnings[1].startswith("ram: RAM range 0x20000000+0x3800 trimmed to 0x20000000+0x3000")
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert debug and debug[-1].message.startswith("commit: add: 1 ioctls")


def test_a_rollback_is_an_error(caplog: pytest.LogCaptureFixture) -> None:
    s = MemorySystem()
    root = s.container("system", 1 << 32)
    ram = s.ram("ram", 0x4000)
    root.add_subregion(0x10000000, ram)
    vm = FaultInjector(SimVm())
    KvmMemoryListener(vm, AddressSpace(root, "memory"))
    vm.inject_failure(1, errno.ENOMEM)
    with pytest.raises(CommitError):
        ram.set_readonly(True)  # delete + create: the create fails
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "rolled back 1 ioctls" in errors[0].message


def test_the_cli_verbose_flag_shows_the_plans() -> None:
    argv = ["diff", "example:pc-pam@", "example:pc-pam@writable-1"]
    quiet = subprocess.run(
        [sys.executable, "-m", "flatview.cli", *argv], cwd=ROOT, capture_output=True, text=True
    )
    loud = subprocess.run(
        [sys.executable, "-m", "flatview.cli", "-v", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert quiet.stderr == ""
    assert "listeners.kvm_listener: DEBUG: commit: " in loud.stderr
