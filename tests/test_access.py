"""AddressSpace.read/write dispatch across RAM, ROM, rom_device and mmio."""

from __future__ import annotations

import pytest

from flatview import AccessError, AddressSpace, MemorySystem, MmioOps


def test_read_write_across_ram_mmio_and_readonly_alias() -> None:
    s = MemorySystem()
    root = s.container("root", 2**64)
    ram = s.ram("ram", 0x3000)
    writes: list[tuple[int, int, int]] = []
    dev = s.mmio(
        "dev",
        0x1000,
        MmioOps(
            read=lambda off, size: 0x1122334455667788 >> (8 * (off % 8)),
            write=lambda off, size, v: writes.append((off, size, v)),
        ),
    )
    root.add_subregion(0, ram)
    root.add_subregion(0x3000, dev)
    ro = s.alias("ro", ram, 0x1000, 0x1000)
    ro.set_readonly(True)
    root.add_subregion(0x1000, ro, 1)
    space = AddressSpace(root, "memory")

    assert space.write(0x0FFC, b"ABCDEFGH") == 4  # the half in the read-only window is dropped
    assert space.read(0x0FFC, 8) == b"ABCD\x00\x00\x00\x00"
    assert space.write(0x2000, b"xyz") == 0
    assert ram.ram_block is not None and ram.ram_block.read(0x2000, 3) == b"xyz"
    assert space.read(0x3000, 8) == (0x1122334455667788).to_bytes(8, "little")
    space.write(0x3010, b"\x01\x02")
    assert writes == [(0x10, 2, 0x0201)]
    with pytest.raises(AccessError, match="unassigned address 0x4000"):
        space.read(0x3FFF, 2)


def test_rom_device_reads_ram_in_romd_mode_and_ops_outside() -> None:
    s = MemorySystem()
    root = s.container("root", 2**64)
    seen: list[int] = []
    flash = s.rom_device(
        "flash",
        0x1000,
        MmioOps(read=lambda off, size: 0xAA, write=lambda off, size, v: seen.append(v)),
    )
    assert flash.ram_block is not None
    flash.ram_block.write(0, b"\x5a")
    root.add_subregion(0xFFFF0000, flash)
    space = AddressSpace(root, "memory")
    assert space.read(0xFFFF0000, 1) == b"\x5a"
    space.write(0xFFFF0000, b"\x99")  # writes always go to the device
    assert seen == [0x99] and space.read(0xFFFF0000, 1) == b"\x5a"
    flash.set_romd(False)
    assert space.read(0xFFFF0000, 1) == b"\xaa"
