"""What is true after each failure: the KVM listener's table equals the kernel's,
teardown deletes what it mapped, and the next commit reconciles (issue 11)."""

from __future__ import annotations

import contextlib
import errno
import threading
from collections.abc import Callable

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from flatview import AddressSpace, ConfigError, MemoryRegionSection, MemorySystem
from flatview.region import MemoryRegion
from kvm_backend import CommitError, Kvm, Memslot, MemslotBackend, SimKvm, SimVm
from kvm_backend.testing.fault_injection import FaultInjector
from listeners import KvmMemoryListener, RecordingListener, RegistrationError, desired_mappings
from listeners.planner import Slot

MB = 1 << 20


def kernel_table(vm: SimVm | FaultInjector) -> dict[int, Memslot]:
    return vm.slots()


def listener_table(kl: KvmMemoryListener) -> dict[int, Memslot]:
    return {s.slot: _memslot(s) for s in kl.slots}


def _memslot(s: Slot) -> Memslot:
    m = s.mapping
    return Memslot(s.slot, m.flags, m.gpa, m.size, m.hva)


def board() -> tuple[MemorySystem, MemoryRegion, MemoryRegion, AddressSpace]:
    """RAM at 0 with a read-only shadow window over [0xc0000, 0xd0000)."""
    s = MemorySystem()
    root = s.container("system", 2**64)
    ram = s.ram("ram", 2 * MB)
    root.add_subregion(0, ram)
    shadow = s.alias("shadow", ram, 0xC0000, 0x10000)
    shadow.set_readonly(True)
    shadow.set_enabled(False)
    root.add_subregion(0xC0000, shadow, priority=1)
    return s, root, shadow, AddressSpace(root, "memory")


def in_step(kl: KvmMemoryListener, vm: SimVm | FaultInjector, space: AddressSpace) -> None:
    """The invariant after a successful commit: kernel = listener table = view."""
    assert listener_table(kl) == kernel_table(vm)
    mapped = sorted((m.gpa, m.size, m.hva, m.flags) for m in desired_mappings(space.flatview))
    got = sorted((m.gpa, m.size, m.hva, m.flags) for s in kl.slots for m in [s.mapping])
    assert _pages(got) == _pages(mapped)


def _pages(ranges: list[tuple[int, int, int, int]]) -> dict[int, tuple[int, int]]:
    return {
        g: (hva + g - gpa, flags)
        for gpa, size, hva, flags in ranges
        for g in range(gpa, gpa + size, 4096)
    }


def test_destroy_deletes_every_slot_and_a_new_listener_can_take_the_vm() -> None:
    _, root, _, space = board()
    vm = SimVm()
    kl = KvmMemoryListener(vm, space)
    assert vm.slots()
    space.destroy()
    assert vm.slots() == {} and kl.slots == () and space.listeners == ()
    again = KvmMemoryListener(vm, AddressSpace(root, "memory"))
    assert again.slots and listener_table(again) == vm.slots()


def test_remove_listener_deletes_every_slot() -> None:
    _, _, _, space = board()
    vm = SimVm()
    kl = KvmMemoryListener(vm, space)
    space.remove_listener(kl)
    assert vm.slots() == {} and space.listeners == ()


def test_failed_constructor_replay_rolls_back_and_leaves_nothing_registered() -> None:
    s = MemorySystem()
    root = s.container("system", 2**64)
    root.add_subregion(0, s.ram("low", MB))
    root.add_subregion(1 << 32, s.ram("high", MB))  # above a 32-bit guest's max GPA
    space = AddressSpace(root, "memory")
    vm = SimVm(SimKvm(max_gpa_bits=32))
    with pytest.raises(CommitError) as ei:
        KvmMemoryListener(vm, space)
    assert ei.value.errno == errno.EINVAL and ei.value.rolled_back
    assert vm.slots() == {} and space.listeners == () and s.listeners == ()


def test_nop_only_commit_after_a_failed_commit_reconciles_the_table() -> None:
    s, root, shadow, space = board()
    hidden = s.ram("hidden", 0x1000)
    root.add_subregion(0x1000, hidden, priority=-1)  # under RAM: toggling it changes nothing
    vm = FaultInjector(SimVm())
    kl = KvmMemoryListener(vm, space)
    vm.inject_failure(0, errno.ENOMEM)
    with pytest.raises(CommitError):
        shadow.set_enabled(True)  # the read-only shadow is not applied
    assert listener_table(kl) == kernel_table(vm) and not kl.in_sync
    rec = RecordingListener()
    space.add_listener(rec)
    rec.clear()
    hidden.set_enabled(False)
    assert set(rec.names()) == {"begin", "region_nop", "commit"}
    in_step(kl, vm, space)
    assert kl.in_sync and any(sl.mapping.readonly for sl in kl.slots)


class _Buggy(RecordingListener):
    armed = True

    def region_add(self, section: MemoryRegionSection) -> None:
        super().region_add(section)
        if self.armed:
            raise RuntimeError("buggy device listener")


def test_a_raising_callback_still_publishes_the_view_and_commits_every_listener() -> None:
    s, root, _, space = board()
    vm = SimVm()
    kl = KvmMemoryListener(vm, space)
    buggy, rec = _Buggy(priority=20), RecordingListener(priority=30)
    root.add_subregion(0x1000_0000, s.ram("pre", 0x1000))
    with pytest.raises(RuntimeError):
        space.add_listener(buggy)  # its replay raises: not registered
    assert buggy not in space.listeners
    buggy.armed = False
    space.add_listener(buggy)
    buggy.armed = True
    space.add_listener(rec)
    rec.clear()
    with pytest.raises(RuntimeError, match="buggy"):
        root.add_subregion(0x2000_0000, s.ram("hotplug", MB))
    assert space.flatview.lookup(0x2000_0000) is not None  # the view was published
    assert space.read(0x2000_0000, 4) == b"\0\0\0\0"
    assert rec.names()[0] == "begin" and rec.names()[-1] == "commit"
    in_step(kl, vm, space)  # the KVM listener committed too
    with s.transaction():
        pass  # an empty transaction commits nothing and raises nothing
    assert not s.depth


def test_failed_rollback_keeps_the_table_equal_to_the_kernel_and_the_next_commit_recovers() -> None:
    _, _, shadow, space = board()
    vm = FaultInjector(SimVm())
    kl = KvmMemoryListener(vm, space)
    vm.inject_failure(1, errno.ENOMEM)  # the second ioctl of the commit
    vm.inject_failure(2, errno.EFAULT)  # and the undo of the first
    with pytest.raises(CommitError) as ei:
        shadow.set_enabled(True)
    assert not ei.value.rolled_back
    assert listener_table(kl) == kernel_table(vm) and not kl.in_sync
    kl.apply()  # or any later commit
    in_step(kl, vm, space)


@pytest.mark.parametrize("bad", [-1, 0, 0x1800, 1.5, True, 1 << 60])
def test_max_slot_size_must_be_a_positive_page_multiple(bad: object) -> None:
    _, _, _, space = board()
    with pytest.raises(ConfigError, match="max_slot_size"):
        KvmMemoryListener(SimVm(), space, max_slot_size=bad)  # type: ignore[arg-type]
    assert space.listeners == ()


def test_sync_dirty_log_from_another_thread_while_commits_run() -> None:
    _, root, shadow, space = board()
    ram = root.subregions[-1]
    ram.log_start("migration")
    vm = SimVm()
    kl = KvmMemoryListener(vm, space)
    errors: list[BaseException] = []
    stop = threading.Event()

    def migrate() -> None:
        while not stop.is_set():
            try:
                kl.sync_dirty_log()
            except BaseException as e:
                errors.append(e)
                return

    t = threading.Thread(target=migrate)
    t.start()
    try:
        for i in range(300):
            shadow.set_enabled(i % 2 == 0)
            vm.touch(0x100000 + (i % 16) * 4096)
    finally:
        stop.set()
        t.join()
    assert errors == []
    in_step(kl, vm, space)


class ListenerLifecycle(RuleBasedStateMachine):
    """Commits, injected failures at any ioctl (rollbacks included), teardown and
    re-registration, a raising device listener, and dirty logging, interleaved.

    After every step: the listener's table is the kernel's; after a successful
    commit it maps exactly the view; after teardown the kernel holds no slot.
    """

    def backend(self) -> MemslotBackend:
        return SimVm()

    def __init__(self) -> None:
        super().__init__()
        self.s, self.root, self.shadow, self.space = board()
        self.ram = self.root.subregions[-1]
        self.hotplug = self.s.ram("hotplug", MB, max_size=8 * MB)
        self.root.add_subregion(0x4000_0000, self.hotplug)
        self.vm = FaultInjector(self.backend())
        self.kl: KvmMemoryListener | None = KvmMemoryListener(self.vm, self.space)
        self.buggy = _Buggy(priority=20)
        self.buggy.armed = False
        self.space.add_listener(self.buggy)
        self.logging = False
        self.expected: set[int] = set()
        """Pages of ``ram`` written while logged: each must be reported dirty."""

    def _commit(self, change: Callable[[], None]) -> None:
        with contextlib.suppress(CommitError, RuntimeError):
            change()

    @rule(ro=st.booleans(), enabled=st.booleans())
    def shadow_change(self, ro: bool, enabled: bool) -> None:
        def change() -> None:
            with self.s.transaction():
                self.shadow.set_readonly(ro)
                self.shadow.set_enabled(enabled)

        self._commit(change)

    @rule(pages=st.integers(1, 2048))
    def resize_hotplug(self, pages: int) -> None:
        self._commit(lambda: self.hotplug.set_size(pages * 4096))

    @rule()
    def toggle_logging(self) -> None:
        self.logging = not self.logging
        if self.logging:
            self._commit(lambda: self.ram.log_start("migration"))
        else:
            self._commit(lambda: self.ram.log_stop("migration"))

    @rule(at=st.integers(0, 4), also_at=st.none() | st.integers(1, 6))
    def inject(self, at: int, also_at: int | None) -> None:
        self.vm.inject_failure(at, errno.ENOMEM)
        if also_at is not None:
            self.vm.inject_failure(at + also_at, errno.EFAULT)

    @rule(armed=st.booleans())
    def arm_device_listener(self, armed: bool) -> None:
        self.buggy.armed = armed

    @rule()
    def teardown_and_register_again(self) -> None:
        with contextlib.suppress(CommitError, RuntimeError):
            self.space.destroy()
        if self.kl is not None and self.vm.slots():
            self.vm.clear()  # nothing more to inject: retry the deletes
            self.kl.close()
        assert self.vm.slots() == {}
        self.space = AddressSpace(self.root, "memory")
        self.kl = None
        self.buggy.armed = False
        self.space.add_listener(self.buggy)
        try:
            self.kl = KvmMemoryListener(self.vm, self.space)
        except RegistrationError as e:  # the rollback and the cleanup failed too
            assert listener_table(e.listener) == kernel_table(self.vm)
            assert self.space.listeners == (self.buggy,)
            self.vm.clear()
            e.listener.close()
            assert self.vm.slots() == {}
        except CommitError:
            assert self.vm.slots() == {} and self.space.listeners == (self.buggy,)

    @rule()
    def sync(self) -> None:
        if self.kl is not None:
            self.kl.sync_dirty_log()

    @rule(page=st.integers(0x100, 0x1FF))
    def device_write(self, page: int) -> None:
        self.space.write(page * 4096, b"d")
        if self.logging:
            self.expected.add(page)

    @rule(page=st.integers(0x100, 0x1FF))
    def guest_write(self, page: int) -> None:
        sim = self.vm.backend
        if not isinstance(sim, SimVm):
            return  # real KVM: the guest-side writes are the race tests' business
        gpa = page * 4096
        logged = any(ms.gpa <= gpa < ms.end and ms.dirty_logging for ms in sim.slots().values())
        if sim.touch(gpa) and logged:
            self.expected.add(page)

    @rule()
    def take_dirty(self) -> None:
        if self.kl is not None:
            self.kl.sync_dirty_log()
        snap = self.ram.snapshot_and_clear_dirty(0, self.ram.size, "migration")
        assert self.expected <= snap.pages, f"lost dirty pages {self.expected - snap.pages}"
        self.expected.clear()

    @invariant()
    def table_is_the_kernels(self) -> None:
        if self.kl is None:
            assert self.vm.slots() == {}
            return
        assert listener_table(self.kl) == kernel_table(self.vm)
        if self.kl.in_sync:
            in_step(self.kl, self.vm, self.space)

    def teardown(self) -> None:
        self.vm.clear()
        if self.kl is not None:
            self.kl.close()
            assert self.vm.slots() == {}
        self.hotplug.close()
        self.ram.close()
        close = getattr(self.vm.backend, "close", None)
        if close is not None:
            close()


ListenerLifecycle.TestCase.settings = settings(
    max_examples=60, stateful_step_count=25, deadline=None
)
test_listener_lifecycle = ListenerLifecycle.TestCase


class RealKvmListenerLifecycle(ListenerLifecycle):
    """The same machine against /dev/kvm (bounded: a few hundred commits)."""

    def backend(self) -> MemslotBackend:
        assert KVM is not None
        return KVM.create_vm()


RealKvmListenerLifecycle.TestCase.settings = settings(
    max_examples=12, stateful_step_count=20, deadline=None
)
KVM: Kvm | None = None


@pytest.mark.kvm
def test_listener_lifecycle_on_real_kvm(kvm: Kvm) -> None:
    global KVM
    KVM = kvm
    try:
        run_state_machine_as_test(
            RealKvmListenerLifecycle, settings=RealKvmListenerLifecycle.TestCase.settings
        )
    finally:
        KVM = None


def _two_ram_space() -> AddressSpace:
    s = MemorySystem()
    root = s.container("system", 2**64)
    root.add_subregion(0, s.ram("low", MB))
    root.add_subregion(0x1000_0000, s.ram("high", MB))
    return AddressSpace(root, "memory")


def test_failed_constructor_whose_rollback_fails_still_deletes_what_it_mapped() -> None:
    space = _two_ram_space()
    vm = FaultInjector(SimVm())
    vm.inject_failure(1, errno.ENOMEM)  # the second create
    vm.inject_failure(2, errno.EFAULT)  # the undo of the first
    with pytest.raises(CommitError) as ei:
        KvmMemoryListener(vm, space)
    assert not ei.value.rolled_back
    assert vm.slots() == {} and space.listeners == ()  # the cleanup deleted it


def test_failed_constructor_whose_cleanup_fails_hands_over_the_listener_to_close() -> None:
    space = _two_ram_space()
    vm = FaultInjector(SimVm())
    for k, err in ((1, errno.ENOMEM), (2, errno.EFAULT), (3, errno.EFAULT)):
        vm.inject_failure(k, err)
    with pytest.raises(RegistrationError, match="slots left in the kernel: \\[0\\]") as ei:
        KvmMemoryListener(vm, space)
    assert space.listeners == () and listener_table(ei.value.listener) == vm.slots() != {}
    ei.value.listener.close()
    assert vm.slots() == {}


def test_writes_through_the_address_space_are_dirty_for_the_logging_clients() -> None:
    _, root, _, space = board()
    ram = root.subregions[-1]
    ram.log_start("vga")
    space.write(0x3000, b"x" * 0x1001)  # two pages
    assert ram.get_dirty(0x3000, 1, "vga") and ram.get_dirty(0x4000, 1, "vga")
    assert not ram.get_dirty(0, 0x3000, "vga") and not ram.get_dirty(0, ram.size, "migration")
    snap = ram.snapshot_and_clear_dirty(0, 0x10000, "vga")
    assert snap.pages == {3, 4} and snap.get_dirty(0x4000, 0x1000)
    assert not ram.get_dirty(0, ram.size, "vga")
    ram.log_stop("vga")
    space.write(0x3000, b"y")  # nobody logs: nothing is marked
    assert not ram.get_dirty(0, ram.size, "vga")


def test_writes_completed_by_optimistic_repair_are_dirty() -> None:
    from kvm_backend import MmioExit
    from listeners import CommitWindow

    _, root, _, space = board()
    ram = root.subregions[-1]
    ram.log_start("migration")
    window = CommitWindow(space)
    window.begin()
    window.end()  # a commit ran since the vCPU entered (generation 0)
    assert window.mmio(MmioExit(0x5000, True, 4, b"abcd"), entry_generation=0) is None
    assert space.read(0x5000, 4) == b"abcd"
    assert ram.get_dirty(0x5000, 4, "migration")
