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
Q35_PAM = 0x90
"""First of the seven q35 (MCH) PAM config registers (0x90-0x96)."""

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
        machine: str = "pc",
    ) -> None:
        """``machine``: ``"pc"`` (i440fx) or ``"q35"`` (MCH: PAM registers at 0x90, and
        the q35 regions that start disabled — smram-open-high, tseg-blackhole,
        smbase-blackhole — plus MMCFG)."""
        if machine not in ("pc", "q35"):
            raise RegionError(f"PcBoard: machine {machine!r} is not 'pc' or 'q35'")
        self.machine = machine
        self.pam_base = I440FX_PAM if machine == "pc" else Q35_PAM
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
            if machine == "q35":
                self._add_q35_regions(below)
        self.memory = AddressSpace(self.root, "memory")

    def _add_q35_regions(self, low_ram_top: int) -> None:
        s = self.system
        self.mmcfg = s.mmio("pcie-mmcfg-mmio", 256 * MiB, MmioOps())
        self.pci.add_subregion(0xB0000000, self.mmcfg)
        tseg = 1 * MiB
        self.tseg_blackhole = s.mmio("tseg-blackhole", tseg, MmioOps(read=lambda o, n: -1))
        self.tseg_blackhole.set_enabled(False)
        self.root.add_subregion(low_ram_top - tseg, self.tseg_blackhole, 1)
        self.smbase_blackhole = s.mmio("smbase-blackhole", 128 * KiB, MmioOps(read=lambda o, n: -1))
        self.smbase_blackhole.set_enabled(False)
        self.root.add_subregion(0x30000, self.smbase_blackhole, 1)
        self.smram_open_high = s.alias("smram-open-high", self.ram, 0xA0000, 128 * KiB)
        self.smram_open_high.set_enabled(False)
        self.root.add_subregion(0xFEDA0000, self.smram_open_high, 1)

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
        if not self.pam_base <= reg < self.pam_base + 7:
            raise RegionError(
                f"write_pam_register: {reg:#x} is not a PAM register "
                f"({self.pam_base:#x}-{self.pam_base + 6:#x})"
            )
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
            if self.pam_base <= reg < self.pam_base + 7:
                self.pam_regs[reg - self.pam_base] = byte
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
        (label, config address, value).  As SeaBIOS does: read the two dwords around
        PAM0, make_bios_writable sets PAM1-6 to 0x33 and PAM0 to 0x30;
        make_bios_readonly write-protects 0xc0000-0xe7fff (PAM1-5 = 0x11, leaving
        PAM6 = 0x33: the upper-memory allocator's 0xe8000-0xeffff) and PAM0 = 0x10."""
        base = self.pam_base & ~3
        first = self.pam_base - base
        data = [0] * 8
        out: list[tuple[str, int, int]] = []

        def dwords(label: str) -> None:
            for i, addr in enumerate((base, base + 4)):
                value = int.from_bytes(bytes(data[4 * i : 4 * i + 4]), "little")
                out.append((f"{label}, PAM dword {i + 1}", addr, value))

        for i in range(1, 7):
            data[first + i] = 0x33
        data[first] = 0x30
        dwords("make_bios_writable")
        for i in range(1, 6):
            data[first + i] = 0x11
        data[first] = 0x10
        dwords("make_bios_readonly")
        return out

    def set_smram_open(self, opened: bool) -> None:
        """D_OPEN: disable ``smram-region`` so RAM shows through at 0xa0000."""
        self.smram_region.set_enabled(not opened)
