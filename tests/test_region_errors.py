"""Bad input raises a typed error naming the place, and changes nothing."""

from __future__ import annotations

import pytest

from flatview import AccessError, AddressSpace, HostMemoryError, MemorySystem, RegionError
from listeners import RecordingListener


@pytest.fixture
def s() -> MemorySystem:
    return MemorySystem()


def test_negative_size_is_refused(s: MemorySystem) -> None:
    with pytest.raises(RegionError, match="negative size"):
        s.container("c", -1)


def test_size_above_64_bits_is_refused(s: MemorySystem) -> None:
    with pytest.raises(RegionError, match="wider than the 64-bit space"):
        s.container("c", 2**64 + 1)
    assert s.container("root", 2**64).size == 2**64


def test_child_wider_than_the_64bit_space_is_refused(s: MemorySystem) -> None:
    root = s.container("root", 2**64)
    ram = s.ram("ram", 0x2000)
    with pytest.raises(RegionError, match="wider than the 64-bit space"):
        root.add_subregion(2**64 - 0x1000, ram)
    assert ram.parent is None and root.subregions == ()


def test_alias_past_target_end_is_refused(s: MemorySystem) -> None:
    ram = s.ram("ram", 0x2000)
    with pytest.raises(RegionError, match="runs past the end"):
        s.alias("a", ram, 0x1000, 0x2000)
    a = s.alias("a", ram, 0, 0x1000)
    with pytest.raises(RegionError, match="runs past the end"):
        a.set_alias_offset(0x1800)
    with pytest.raises(RegionError, match="runs past the end"):
        a.set_size(0x3000)
    assert (a.alias_offset, a.size) == (0, 0x1000)


def test_alias_cycle_is_refused(s: MemorySystem) -> None:
    box = s.container("box", 0x10000)
    loop = s.alias("loop", box, 0, 0x1000)
    with pytest.raises(RegionError, match="cycle"):
        box.add_subregion(0, loop)
    with pytest.raises(RegionError, match="cycle"):
        box.add_subregion(0, box)
    outer = s.container("outer", 0x10000)
    outer.add_subregion(0, box)
    back = s.alias("back", outer, 0, 0x100)
    with pytest.raises(RegionError, match="cycle"):
        box.add_subregion(0x100, back)
    assert box.subregions == ()


def test_region_with_a_parent_cannot_be_added_twice(s: MemorySystem) -> None:
    a, b = s.container("a", 0x1000), s.container("b", 0x1000)
    ram = s.ram("ram", 0x1000)
    a.add_subregion(0, ram)
    with pytest.raises(RegionError, match="already has parent 'a'"):
        b.add_subregion(0, ram)
    assert ram.parent is a and b.subregions == ()


def test_size_change_of_a_non_resizable_block_is_refused(s: MemorySystem) -> None:
    root = s.container("root", 2**64)
    ram = s.ram("ram", 0x2000)
    root.add_subregion(0, ram)
    space = AddressSpace(root, "memory")
    rec = RecordingListener()
    space.add_listener(rec)
    rec.clear()
    with pytest.raises(RegionError, match="not resizable"):
        ram.set_size(0x4000)
    grow = s.ram("grow", 0x1000, max_size=0x4000)
    with pytest.raises(RegionError, match="max length"):
        grow.set_size(0x8000)
    assert ram.size == 0x2000 and grow.size == 0x1000 and rec.events == []


def test_resizable_block_keeps_its_host_address(s: MemorySystem) -> None:
    ram = s.ram("ram", 0x1000, max_size=0x100000)
    assert ram.ram_block is not None
    host = ram.ram_block.host_addr
    ram.set_size(0x80000)
    ram.set_size(0x2000)
    assert ram.ram_block.host_addr == host and ram.ram_block.used_length == 0x2000


def test_romd_on_a_non_rom_device_is_refused(s: MemorySystem) -> None:
    with pytest.raises(RegionError, match="romd"):
        s.ram("ram", 0x1000).set_romd(False)


def test_unknown_log_client_and_unbalanced_stop_are_refused(s: MemorySystem) -> None:
    ram = s.ram("ram", 0x1000)
    with pytest.raises(RegionError, match="unknown dirty-log client"):
        ram.log_start("gpu")
    with pytest.raises(RegionError, match="not started"):
        ram.log_stop("vga")
    with pytest.raises(RegionError, match="RAM-backed"):
        s.container("c", 0x1000).log_start("vga")


def test_del_subregion_of_a_stranger_is_refused(s: MemorySystem) -> None:
    a = s.container("a", 0x1000)
    with pytest.raises(RegionError, match="not a subregion"):
        a.del_subregion(s.ram("ram", 0x1000))


def test_regions_of_two_systems_do_not_mix(s: MemorySystem) -> None:
    other = MemorySystem()
    with pytest.raises(RegionError, match="different systems"):
        s.container("a", 0x1000).add_subregion(0, other.ram("r", 0x1000))


def test_ram_of_the_whole_64_bit_space_is_a_host_memory_error_not_an_overflow() -> None:
    s = MemorySystem()
    with pytest.raises(HostMemoryError, match="exceeds what this host can map"):
        s.ram("huge", 2**64)
    with pytest.raises(HostMemoryError, match="max_size 0x10000000000000000"):
        s.ram("huge", 0x1000, max_size=2**64)


def test_negative_max_size_names_max_size() -> None:
    with pytest.raises(HostMemoryError, match="negative max_size -1"):
        MemorySystem().ram("r", 0x1000, max_size=-1)


def test_set_size_up_to_an_unaligned_max_size_is_accepted() -> None:
    r = MemorySystem().ram("r", 0x1000, max_size=0x2800)
    r.set_size(0x2800)
    assert r.size == 0x3000 and r.ram_block is not None and r.ram_block.max_length == 0x3000


def test_float_alias_offset_is_refused() -> None:
    s = MemorySystem()
    ram = s.ram("ram", 0x10000)
    with pytest.raises(RegionError, match="offset must be an integer"):
        s.alias("a", ram, 1.5, 0x1000)  # type: ignore[arg-type]
    a = s.alias("b", ram, 0, 0x1000)
    with pytest.raises(RegionError, match="offset must be an integer"):
        a.set_alias_offset(4096.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("client", [8, 0, 3, "dma", None, True])
def test_log_start_refuses_anything_but_one_client(client: object) -> None:
    ram = MemorySystem().ram("ram", 0x10000)
    with pytest.raises(RegionError, match="unknown dirty-log client"):
        ram.log_start(client)  # type: ignore[arg-type]
    assert ram.log_mask == 0


def test_read_of_the_whole_space_is_an_access_error() -> None:
    s = MemorySystem()
    space = AddressSpace(s.container("root", 2**64), "memory")
    with pytest.raises(AccessError, match="larger than"):
        space.read(0, 2**64)


def test_shrinking_a_ram_target_below_an_alias_window_is_refused() -> None:
    s = MemorySystem()
    ram = s.ram("ram", 0x10000, max_size=0x20000)
    s.alias("window", ram, 0x8000, 0x8000)
    with pytest.raises(RegionError, match="alias 'window' shows"):
        ram.set_size(0x4000)
    assert ram.size == 0x10000
    ram.set_size(0x10000 + 0x1000)
    ram.set_size(0x10000)  # down to the window's end is fine
