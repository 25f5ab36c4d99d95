"""Transactions, update-pending rules, listener order, registration replay, sharing."""

from __future__ import annotations

import pytest

from flatview import (
    AddressSpace,
    DirtyLogClient,
    ListenerBase,
    MemoryRegionSection,
    MemorySystem,
    TransactionError,
)
from listeners import RecordingListener


def small_system() -> tuple[MemorySystem, AddressSpace]:
    s = MemorySystem()
    root = s.container("root", 2**64)
    ram = s.ram("ram", 0x10000)
    root.add_subregion(0, ram)
    return s, AddressSpace(root, "memory")


def test_nested_transactions_commit_once_at_depth_zero() -> None:
    s, space = small_system()
    rec = RecordingListener()
    space.add_listener(rec)
    rec.clear()
    ram = space.root.subregions[0]
    with s.transaction():
        with s.transaction():
            ram.set_enabled(False)
        assert rec.events == []
        ram.set_enabled(True)
        ram.set_enabled(False)
    assert rec.names() == ["begin", "region_del", "commit"]


def test_commit_without_pending_update_notifies_nobody() -> None:
    s, space = small_system()
    rec = RecordingListener()
    space.add_listener(rec)
    rec.clear()
    with s.transaction():
        pass
    ram = space.root.subregions[0]
    ram.set_enabled(True)  # unchanged value: setter returns early
    assert rec.events == []


def test_change_inside_disabled_subtree_gives_only_nops() -> None:
    s, space = small_system()
    box = s.container("box", 0x1000)
    box.set_enabled(False)
    space.root.add_subregion(0x100000, box)
    rec = RecordingListener()
    space.add_listener(rec)
    rec.clear()
    inner = s.ram("inner", 0x1000)
    box.add_subregion(0, inner)  # parent disabled: nothing pending
    assert rec.events == []
    inner.set_readonly(True)  # inner itself is enabled: pending, though invisible
    assert rec.names() == ["begin", "region_nop", "commit"]


def test_commit_without_begin_is_an_error() -> None:
    s = MemorySystem()
    with pytest.raises(TransactionError):
        s.commit()


def test_mutation_from_a_listener_during_commit_is_refused() -> None:
    _s, space = small_system()
    ram = space.root.subregions[0]

    class Meddler(ListenerBase):
        error: Exception | None = None

        def region_del(self, section: MemoryRegionSection) -> None:
            try:
                ram.set_readonly(True)
            except TransactionError as e:
                self.error = e

    m = Meddler()
    space.add_listener(m)
    ram.set_enabled(False)
    assert isinstance(m.error, TransactionError)


def test_listener_order_forward_and_reverse() -> None:
    _s, space = small_system()
    log: list[str] = []

    class Named(ListenerBase):
        def __init__(self, tag: str, priority: int) -> None:
            self.tag, self.priority = tag, priority

        def begin(self) -> None:
            log.append(f"begin {self.tag}")

        def commit(self) -> None:
            log.append(f"commit {self.tag}")

        def region_add(self, section: MemoryRegionSection) -> None:
            log.append(f"add {self.tag}")

        def region_del(self, section: MemoryRegionSection) -> None:
            log.append(f"del {self.tag}")

        def log_start(self, section: MemoryRegionSection, o: int, n: int) -> None:
            log.append(f"log_start {self.tag}")

        def log_stop(self, section: MemoryRegionSection, o: int, n: int) -> None:
            log.append(f"log_stop {self.tag}")

    for tag, prio in (("b", 10), ("a", 0), ("c", 10)):
        space.add_listener(Named(tag, prio))
    ram = space.root.subregions[0]
    log.clear()
    ram.set_readonly(True)
    assert log == [
        "begin a",
        "begin b",
        "begin c",
        "del c",
        "del b",
        "del a",
        "add a",
        "add b",
        "add c",
        "commit a",
        "commit b",
        "commit c",
    ]
    log.clear()
    ram.log_start(DirtyLogClient.VGA)
    assert log[3:6] == ["log_start a", "log_start b", "log_start c"]
    log.clear()
    ram.log_stop(DirtyLogClient.VGA)
    assert log[3:6] == ["log_stop c", "log_stop b", "log_stop a"]


def test_late_listener_gets_state_replayed_and_removal_deletes_all() -> None:
    s, space = small_system()
    ram = space.root.subregions[0]
    ram.log_start("vga")
    s.global_log_start()
    rec = RecordingListener()
    space.add_listener(rec)
    assert rec.names() == ["begin", "log_global_start", "region_add", "log_start", "commit"]
    assert rec.events[3].new_mask == DirtyLogClient.VGA | DirtyLogClient.MIGRATION
    rec.clear()
    space.remove_listener(rec)
    assert rec.names() == ["begin", "region_del", "commit"]
    ram.set_enabled(False)
    assert rec.names() == ["begin", "region_del", "commit"]  # no longer called


def test_vga_logging_is_refcounted() -> None:
    _s, space = small_system()
    ram = space.root.subregions[0]
    rec = RecordingListener()
    space.add_listener(rec)
    rec.clear()
    ram.log_start("vga")
    ram.log_start("vga")
    ram.log_stop("vga")
    assert rec.names().count("log_start") == 1 and "log_stop" not in rec.names()
    ram.log_stop("vga")
    assert rec.names().count("log_stop") == 1


def test_address_spaces_with_equivalent_roots_share_one_flatview() -> None:
    s = MemorySystem()
    sysmem = s.container("system", 2**64)
    sysmem.add_subregion(0, s.ram("ram", 0x10000))
    memory = AddressSpace(sysmem, "memory")
    cpu0 = AddressSpace(sysmem, "cpu-memory-0")
    bm_alias = s.alias("bm-alias", sysmem, 0, 2**64)
    bm = s.container("bus master container", 2**64)
    bm.add_subregion(0, bm_alias)
    dma = AddressSpace(bm, "dma")
    assert memory.flatview is cpu0.flatview is dma.flatview
    bm_alias.set_enabled(False)
    assert memory.flatview is cpu0.flatview
    assert len(dma.flatview) == 0
    bm_alias.set_enabled(True)
    assert memory.flatview is dma.flatview


def test_each_address_space_diffs_for_its_own_listeners() -> None:
    s = MemorySystem()
    sysmem = s.container("system", 2**64)
    ram = s.ram("ram", 0x10000)
    sysmem.add_subregion(0, ram)
    a, b = AddressSpace(sysmem, "a"), AddressSpace(sysmem, "b")
    ra, rb = RecordingListener(), RecordingListener()
    a.add_listener(ra)
    b.add_listener(rb)
    ra.clear()
    rb.clear()
    ram.set_readonly(True)
    # begin/commit are global: each listener gets one of each; del/add from its own AS
    assert ra.names() == rb.names() == ["begin", "region_del", "region_add", "commit"]
    assert ra.events[1].section is not None and ra.events[1].section.address_space is a
    assert rb.events[1].section is not None and rb.events[1].section.address_space is b
