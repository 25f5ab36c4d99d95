"""Real-KVM tests run wherever /dev/kvm opens; elsewhere they skip with the reason.

Where /dev/kvm is usable, a skipped ``kvm`` test fails the session: a KVM test must
never silently not run on a machine that can run it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kvm_backend.kvm import Kvm, kvm_unavailable_reason

KVM_REASON = kvm_unavailable_reason()
_skipped_kvm_tests: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if KVM_REASON is None:
        return
    skip = pytest.mark.skip(reason=f"needs /dev/kvm: {KVM_REASON}")
    for item in items:
        if "kvm" in item.keywords:
            item.add_marker(skip)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "kvm" in report.keywords:
        _skipped_kvm_tests.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if KVM_REASON is None and _skipped_kvm_tests:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if KVM_REASON is None and _skipped_kvm_tests:
        terminalreporter.write_line(
            f"FAILED: /dev/kvm is usable but {len(_skipped_kvm_tests)} KVM test(s) were "
            f"skipped: {', '.join(_skipped_kvm_tests[:5])}",
            red=True,
        )
    elif KVM_REASON is not None:
        terminalreporter.write_line(f"KVM tests skipped: {KVM_REASON}", yellow=True)


@pytest.fixture(scope="session")
def kvm() -> Iterator[Kvm]:
    with Kvm() as k:
        yield k
