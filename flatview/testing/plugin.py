"""The flatview pytest plugin: fixtures for testing listeners.

Loaded automatically where flatview is installed (entry point ``pytest11``); in a
source checkout, ``pytest_plugins = ["flatview.testing.plugin"]`` in a conftest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import pytest

from flatview.address_space import AddressSpace
from flatview.system import MemorySystem
from flatview.testing.conformance import ConformanceCheck, RangeState
from kvm_backend.sim import SimVm

ConformanceFactory = Callable[..., ConformanceCheck]


@pytest.fixture
def memory_system() -> MemorySystem:
    """A fresh memory system (regions, address spaces, transactions)."""
    return MemorySystem()


@pytest.fixture
def sim_vm() -> SimVm:
    """A simulated KVM VM: the kernel's memslot rules and errnos, and a timeline."""
    return SimVm()


@pytest.fixture
def conformance() -> Iterator[ConformanceFactory]:
    """``conformance(space, state, keep=...)`` registers a :class:`ConformanceCheck`
    (after the listener under test); every check is unregistered at teardown."""
    made: list[ConformanceCheck] = []

    def make(
        space: AddressSpace,
        state: Callable[[], Iterable[RangeState]],
        keep: Callable[[RangeState], bool] = lambda r: True,
    ) -> ConformanceCheck:
        check = ConformanceCheck(space, state, keep)
        made.append(check)
        return check

    yield make
    for check in made:
        check.close()
