"""Real-KVM tests run wherever /dev/kvm opens, real-QEMU tests wherever Debian's
qemu-system-x86 and seabios are installed too; elsewhere they skip with the reason.

Where the components are usable, a skipped ``kvm`` or ``qemu`` test fails the
session: such a test must never silently not run on a machine that can run it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvm_backend.kvm import Kvm, kvm_unavailable_reason

KVM_REASON = kvm_unavailable_reason()


def _qemu_reason() -> str | None:
    if KVM_REASON is not None:
        return f"needs /dev/kvm: {KVM_REASON}"
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 not installed (Debian's qemu-system-x86; .ci/run installs it)"
    if not Path("/usr/share/seabios/bios-256k.bin").exists():
        return "seabios not installed (Debian's seabios; .ci/run installs it)"
    return None


def _seabios_reason() -> str | None:
    if KVM_REASON is not None:
        return f"needs /dev/kvm: {KVM_REASON}"
    if not Path("/usr/share/seabios/bios-256k.bin").exists():
        return "seabios not installed (Debian's seabios; .ci/run installs it)"
    return None


REASONS = {
    "kvm": KVM_REASON and f"needs /dev/kvm: {KVM_REASON}",
    "qemu": _qemu_reason(),
    "seabios": _seabios_reason(),
}
"""Per marker: why its tests cannot run here (None: they can, and must)."""
_skipped: dict[str, list[str]] = {marker: [] for marker in REASONS}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, reason in REASONS.items():
        if reason is None:
            continue
        skip = pytest.mark.skip(reason=reason)
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for marker in REASONS:
        if report.skipped and marker in report.keywords:
            _skipped[marker].append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if any(REASONS[m] is None and _skipped[m] for m in REASONS):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for marker, reason in REASONS.items():
        skipped = _skipped[marker]
        if reason is None and skipped:
            terminalreporter.write_line(
                f"FAILED: {marker} tests can run here but {len(skipped)} were skipped: "
                f"{', '.join(skipped[:5])}",
                red=True,
            )
        elif reason is not None:
            terminalreporter.write_line(f"{marker} tests skipped: {reason}", yellow=True)


@pytest.fixture(scope="session")
def kvm() -> Iterator[Kvm]:
    with Kvm() as k:
        yield k
