"""The pc-like topology renders each PAM attribute of each segment as QEMU does."""

from __future__ import annotations

import pytest

from flatview.pc import PAM_SEGMENTS, PcBoard


@pytest.fixture(scope="module")
def board() -> PcBoard:
    return PcBoard(ram_size=512 << 20)


def expect_at(board: PcBoard, addr: int, value: int) -> tuple[str, int, bool]:
    if value == 0:  # PCI: pc.rom below 0xe0000, isa-bios (pc.bios tail) above
        if addr < 0xE0000:
            return ("pc.rom", addr - 0xC0000, True)
        return ("pc.bios", board.bios.size - 0x20000 + (addr - 0xE0000), True)
    return ("pc.ram", addr, value == 1)


@pytest.mark.parametrize("segment", range(len(PAM_SEGMENTS)))
@pytest.mark.parametrize("value", [0, 1, 2, 3])
def test_pam_attribute_renders_as_qemu(board: PcBoard, segment: int, value: int) -> None:
    board.set_pam_all([0] * 13)
    board.set_pam(segment, value)
    start, size = PAM_SEGMENTS[segment]
    view = board.memory.flatview
    for addr in range(start, start + size, 0x1000):
        fr = view.lookup(addr)
        assert fr is not None
        got = (fr.region.name, fr.offset_in_region + (addr - fr.addr), fr.readonly)
        assert got == expect_at(board, addr, value)
        assert fr.mtree_type() == ("rom" if got[2] else "ram")
    # the other segments stay at PCI
    for other, (ostart, _) in enumerate(PAM_SEGMENTS):
        if other != segment:
            fr = view.lookup(ostart)
            assert fr is not None and fr.region.name != "pc.ram"


def test_smram_region_hides_ram_until_opened() -> None:
    b = PcBoard(vga=True)
    fr = b.memory.flatview.lookup(0xA0000)
    assert fr is not None and fr.region.name == "vga-lowmem"
    b.set_smram_open(True)
    fr = b.memory.flatview.lookup(0xA0000)
    assert fr is not None and fr.region.name == "pc.ram" and fr.offset_in_region == fr.addr
    # RAM below and above merge back into one range through the two aliases
    assert fr.addr == 0 and fr.size == 0xC0000


def test_kvmvapic_rom_stays_writable_whatever_pam_says() -> None:
    b = PcBoard(vapic_addr=0xCA000)
    for value in range(4):
        b.set_pam_all([value] * 13)
        fr = b.memory.flatview.lookup(0xCA000)
        assert fr is not None
        offset = fr.offset_in_region + (0xCA000 - fr.addr)
        assert (fr.region.name, offset, fr.readonly) == ("pc.ram", 0xCA000, False)


def test_all_pam_rw_merges_shadow_with_low_ram() -> None:
    b = PcBoard()
    b.set_pam_all([3] * 13)
    b.set_smram_open(True)
    view = b.memory.flatview
    fr = view.lookup(0)
    assert fr is not None and fr.region.name == "pc.ram" and fr.size == 512 << 20


def test_pam_registers_decode_two_segments_per_byte() -> None:
    b = PcBoard()
    b.write_pam_register(0x59, 0x30)  # segment 0 (0xf0000) in the high nibble
    assert b.pam_values[0] == 3
    b.write_pam_register(0x5A, 0x21)  # segment 1 low nibble, segment 2 high nibble
    assert b.pam_values[1:3] == [1, 2]
    b.write_pam_register(0x5F, 0x13)
    assert b.pam_values[11:13] == [3, 1]


def test_one_pam_write_is_one_commit() -> None:
    b = PcBoard()
    before = b.system.commits
    b.write_pam_register(0x5A, 0x33)
    assert b.system.commits == before + 1
    b.write_pam_register(0x5A, 0x33)  # same value: every alias keeps its state
    assert b.system.commits == before + 1


def low_ranges(b: PcBoard) -> list[tuple[int, int, str, bool]]:
    return [
        (r.addr, r.size, r.region.name, r.readonly)
        for r in b.memory.flatview
        if 0xC0000 <= r.addr < 0x100000
    ]


def test_seabios_pam_sequence_renders_as_the_reference_trace() -> None:
    """The slot layout QEMU 7.2 showed at each SeaBIOS PAM write (reference §12)."""
    b = PcBoard(vapic_addr=0xCA000)
    seq = b.seabios_pam_sequence()
    expected = [
        [(0xC0000, 0x10000, "pc.ram", False), (0xD0000, 0x10000, "pc.rom", True),
         (0xE0000, 0x10000, "pc.bios", True), (0xF0000, (512 << 20) - 0xF0000, "pc.ram", False)],
        [(0xC0000, (512 << 20) - 0xC0000, "pc.ram", False)],
        [(0xC0000, 0xA000, "pc.ram", True), (0xCA000, 0x3000, "pc.ram", False),
         (0xCD000, 0x3000, "pc.ram", True), (0xD0000, 0x20000, "pc.ram", False),
         (0xF0000, 0x10000, "pc.ram", True)],
        [(0xC0000, 0xA000, "pc.ram", True), (0xCA000, 0x3000, "pc.ram", False),
         (0xCD000, 0x1B000, "pc.ram", True), (0xE8000, 0x8000, "pc.ram", False),
         (0xF0000, 0x10000, "pc.ram", True)],
    ]  # fmt: skip
    for (_label, addr, value), want in zip(seq, expected, strict=True):
        before = b.system.commits
        b.write_config(addr, value.to_bytes(4, "little"))
        assert b.system.commits == before + 1
        assert low_ranges(b) == want
