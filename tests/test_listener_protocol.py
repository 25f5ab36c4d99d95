"""MemoryListener is a protocol with every callback optional: a plain class with
any subset of QEMU's callback names works, a misspelt name is refused at
registration, and the opt-in callbacks (region_nop, region_resize) change what a
plain listener is sent exactly as they do for a ListenerBase subclass."""

from __future__ import annotations

from typing import Any

import pytest

from flatview import AddressSpace, ConfigError, MemorySystem
from flatview.section import MemoryRegionSection


def system() -> tuple[MemorySystem, Any, Any, AddressSpace]:
    s = MemorySystem()
    root = s.container("system", 1 << 32)
    ram = s.ram("ram", 0x100000, max_size=0x200000)
    root.add_subregion(0x10000000, ram)
    return s, root, ram, AddressSpace(root, "memory")


class Adds:
    """Only two of QEMU's names; no priority attribute."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def region_add(self, section: MemoryRegionSection) -> None:
        self.seen.append(f"add {section.addr:#x}+{section.size:#x}")

    def commit(self) -> None:
        self.seen.append("commit")


def test_a_plain_class_with_some_callbacks_is_a_listener() -> None:
    s, root, _ram, space = system()
    listener = Adds()
    space.add_listener(listener)
    root.add_subregion(0x20000000, s.ram("more", 0x1000))
    assert listener.seen == ["add 0x10000000+0x100000", "commit", "add 0x20000000+0x1000", "commit"]
    space.remove_listener(listener)
    assert listener not in space.listeners


class Misspelt(Adds):
    def region_ad(self, section: MemoryRegionSection) -> None:
        raise AssertionError("never called")


def test_a_misspelt_callback_is_refused_at_registration() -> None:
    _s, _root, _ram, space = system()
    with pytest.raises(
        ConfigError,
        match=r"'region_ad' is not a MemoryListener callback \(did you mean 'region_add'\?\)",
    ):
        space.add_listener(Misspelt())
    assert space.listeners == ()


class Loud(Adds):
    priority = "high"


def test_a_priority_that_is_not_an_int_is_refused() -> None:
    _s, _root, _ram, space = system()
    with pytest.raises(ConfigError, match="priority must be an int"):
        space.add_listener(Loud())


class Resizes(Adds):
    def region_del(self, section: MemoryRegionSection) -> None:
        self.seen.append("del")

    def region_resize(self, old: MemoryRegionSection, new: MemoryRegionSection) -> None:
        self.seen.append(f"resize {old.size:#x}->{new.size:#x}")


class Nops(Adds):
    def region_nop(self, section: MemoryRegionSection) -> None:
        self.seen.append("nop")


def test_opt_in_callbacks_work_on_plain_classes() -> None:
    s, root, ram, space = system()
    resizer, nopper, plain = Resizes(), Nops(), Adds()
    for listener in (resizer, nopper, plain):
        space.add_listener(listener)
        listener.seen.clear()
    ram.set_size(0x180000)
    assert resizer.seen == ["resize 0x100000->0x180000", "commit"]
    assert plain.seen == ["add 0x10000000+0x180000", "commit"]  # del + add, as in QEMU
    nopper.seen.clear()
    root.add_subregion(0x30000000, s.mmio("dev", 0x1000))
    assert nopper.seen == ["nop", "add 0x30000000+0x1000", "commit"]  # RAM unchanged: nop
