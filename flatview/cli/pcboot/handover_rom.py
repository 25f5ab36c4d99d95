"""Our option ROM for firmware mode, assembled from ``handover.S`` (the bytes are
checked in; a test re-assembles the source where binutils exist), with its two
checksums set: the PnP header's bytes and the whole ROM's each sum to zero."""

from __future__ import annotations

ASSEMBLED = bytes.fromhex(
    "55aa01cb00000000000000000000000000000000000000000000200000000000"
    "24506e50010200000000000000004a004a000180001400000000400000000000"
    "ba1305b001eefaf4ebfc666c6174766965772068616e646f766572"
).ljust(512, b"\0")
"""``as --32 handover.S; objcopy -O binary -j .text`` (checksum bytes still zero)."""

PNP = 0x20
"""Offset of the PnP expansion header (its checksum byte is at +9)."""
FILE = "genroms/flatview.bin"
"""Its name in fw_cfg: SeaBIOS runs every ``genroms/`` file as an option ROM."""


def handover_rom() -> bytes:
    """The ROM with both checksums set."""
    rom = bytearray(ASSEMBLED)
    header = PNP + 2 * 16  # revision 1 headers are 32 bytes
    rom[PNP + 9] = -sum(rom[PNP:header]) & 0xFF
    rom[-1] = -sum(rom[:-1]) & 0xFF
    return bytes(rom)
