"""A pc/i440fx-like board topology, as QEMU builds it (see docs/ and the reference).

Used by tests, benchmarks, the CLI and the example VMM: ``pc.ram`` behind
``ram-below-4g``, the ``pci`` container at priority -1 holding ``pc.bios``,
``isa-bios``, ``pc.rom`` and ``vga-lowmem``, the 13 PAM segments with four
aliases each, ``smram-region`` and (optionally) ``kvmvapic-rom`` at priority 1000.
"""

from __future__ import annotations

from flatview.address_space import AddressSpace
from flatview.errors import RegionError
from flatview.region import MemoryRegion, MmioOps
from flatview.system import MemorySystem

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

PAM_SEGMENTS: tuple[tuple[int, int], ...] = (
    (983040, 65536),
    *tuple((786432 + i * 16384, 16384) for i in range(12)),
)
"""(start, size) of the 13 PAM segments: 0xf0000 (64 KiB), then twelve 16 KiB."""

PAM_PCI, PAM_READ, PAM_WRITE, PAM_RW = 0, 1, 2, 3
"""PAM attribute values: bit 0 = read enable, bit 1 = write enable."""

I440FX_PAM = 0x59
"""First of the seven i440fx PAM config registers (0x59-0x5f)."""

_PAM_ALIAS_NAMES = ("pam-pci", "pam-rom", "pam-pci", "pam-ram")


class PcBoard:
    """The pc memory topology; all mutations happen in one transaction each."""

    def __init__(
        self,
        system: MemorySystem | None = None,
        *,
        ram_size: int = 512 * MiB,
        below_4g_limit: int = 3 * GiB,
        bios_size: int = 256 * KiB,
        vga: bool = True,
        vga_ops: MmioOps | None = None,
        vapic_addr: int | None = None,
        ram_max_size: int | None = None,
    ) -> None:
        self.system = system or MemorySystem()
        s = self.system
        self.root = s.container("system", 2**64)
        self.ram = s.ram("pc.ram", ram_size, max_size=ram_max_size)
        below = min(ram_size, below_4g_limit)
        self.ram_below_4g = s.alias("ram-below-4g", self.ram, 0, below)
        self.ram_above_4g: MemoryRegion | None = None
        self.pci = s.container("pci", 2**64)
        self.bios = s.rom("pc.bios", bios_size)
        isa_size = min(bios_size, 128 * KiB)
        self.isa_bios = s.alias("isa-bios", self.bios, bios_size - isa_size, isa_size)
        self.option_rom = s.rom("pc.rom", 128 * KiB)
        self.vga_lowmem: MemoryRegion | None = (
            s.mmio("vga-lowmem", 128 * KiB, vga_ops or MmioOps()) if vga else None
        )
        self.smram_region = s.alias("smram-region", self.pci, 0xA0000, 0x20000)
        self.pam: list[list[MemoryRegion]] = []
        self.pam_values = [PAM_PCI] * len(PAM_SEGMENTS)
        self.pam_regs = [0] * 7
        self.vapic: MemoryRegion | None = None

        with s.transaction():
            self.root.add_subregion(0, self.ram_below_4g)
            if ram_size > below:
                self.ram_above_4g = s.alias("ram-above-4g", self.ram, below, ram_size - below)
                self.root.add_subregion(4 * GiB, self.ram_above_4g)
            self.root.add_subregion(0, self.pci, -1)
            self.pci.add_subregion(2**32 - bios_size, self.bios)
            self.isa_bios.set_readonly(True)
            self.pci.add_subregion(0x100000 - isa_size, self.isa_bios, 1)
            self.pci.add_subregion(0xC0000, self.option_rom, 1)
            if self.vga_lowmem is not None:
                self.pci.add_subregion(0xA0000, self.vga_lowmem, 1)
            self.root.add_subregion(0xA0000, self.smram_region, 1)
            for start, size in PAM_SEGMENTS:
                aliases = [
                    s.alias(_PAM_ALIAS_NAMES[0], self.pci, start, size),
                    s.alias(_PAM_ALIAS_NAMES[1], self.ram, start, size),
                    s.alias(_PAM_ALIAS_NAMES[2], self.ram, start, size),
                    s.alias(_PAM_ALIAS_NAMES[3], self.ram, start, size),
                ]
                aliases[1].set_readonly(True)
                for value, alias in enumerate(aliases):
                    alias.set_enabled(value == PAM_PCI)
                    self.root.add_subregion(start, alias, 1)
                self.pam.append(aliases)
            if vapic_addr is not None:
                self.add_vapic(vapic_addr)
        self.memory = AddressSpace(self.root, "memory")

    def add_vapic(self, addr: int, size: int = 0x3000) -> None:
        """Map ``kvmvapic-rom``: a pc.ram alias at priority 1000, writable whatever PAM says."""
        if self.vapic is not None:
            raise RegionError("kvmvapic-rom is already mapped")
        self.vapic = self.system.alias("kvmvapic-rom", self.ram, addr, size)
        self.root.add_subregion(addr, self.vapic, 1000)

    def set_pam(self, segment: int, value: int) -> None:
        """Set one segment's attribute (0..3) in its own transaction."""
        values = list(self.pam_values)
        values[segment] = value
        self.set_pam_all(values)

    def set_pam_all(self, values: list[int]) -> None:
        """Re-apply all 13 segments in one transaction, as every PAM config write does."""
        if len(values) != len(PAM_SEGMENTS):
            raise RegionError(f"set_pam_all: need {len(PAM_SEGMENTS)} values, got {len(values)}")
        for v in values:
            if v not in (0, 1, 2, 3):
                raise RegionError(f"set_pam_all: PAM attribute {v!r} is not 0..3")
        with self.system.transaction():
            for seg, value in enumerate(values):
                for i, alias in enumerate(self.pam[seg]):
                    alias.set_enabled(i == value)
            self.pam_values = list(values)

    def write_pam_register(self, reg: int, value: int) -> None:
        """An i440fx config byte write to register 0x59..0x5f (two segments a byte;
        register 0x59 holds segment 0 in its high nibble)."""
        if not I440FX_PAM <= reg < I440FX_PAM + 7:
            raise RegionError(f"write_pam_register: {reg:#x} is not a PAM register (0x59-0x5f)")
        self.write_config(reg, value.to_bytes(1, "little") if 0 <= value <= 0xFF else b"")

    def write_config(self, addr: int, data: bytes) -> None:
        """A config-space write of 1, 2 or 4 bytes at ``addr``: the PAM bytes it covers
        are stored, then all 13 segments are re-applied in one transaction (as QEMU's
        i440fx does for any write overlapping the PAM registers)."""
        if len(data) not in (1, 2, 4):
            raise RegionError(f"write_config({addr:#x}): need 1, 2 or 4 bytes, got {len(data)}")
        touched = False
        for i, byte in enumerate(data):
            reg = addr + i
            if I440FX_PAM <= reg < I440FX_PAM + 7:
                self.pam_regs[reg - I440FX_PAM] = byte
                touched = True
        if touched:
            self._apply_pam_regs()

    def _apply_pam_regs(self) -> None:
        values = [(self.pam_regs[0] >> 4) & 3]
        for seg in range(1, len(PAM_SEGMENTS)):
            byte = self.pam_regs[(seg + 1) // 2]
            values.append((byte >> (0 if seg & 1 else 4)) & 3)
        self.set_pam_all(values)

    def seabios_pam_sequence(self) -> list[tuple[str, int, int]]:
        """SeaBIOS's PAM writes at boot, one 32-bit config write (one commit) each:
        (label, config address, value).  make_bios_writable sets every segment to
        read/write; make_bios_readonly write-protects 0xc0000-0xe7fff and 0xf0000,
        leaving 0xe8000-0xeffff writable (the upper-memory allocator's area)."""
        return [
            ("make_bios_writable, PAM dword 1", 0x58, 0x33333000),
            ("make_bios_writable, PAM dword 2", 0x5C, 0x33333333),
            ("make_bios_readonly, PAM dword 1", 0x58, 0x11111000),
            ("make_bios_readonly, PAM dword 2", 0x5C, 0x33111111),
        ]

    def set_smram_open(self, opened: bool) -> None:
        """D_OPEN: disable ``smram-region`` so RAM shows through at 0xa0000."""
        self.smram_region.set_enabled(not opened)
