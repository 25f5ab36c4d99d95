"""Firmware mode: real, unmodified SeaBIOS (Debian's ``seabios`` package) boots on
the pc board, and its PAM writes reshape memory through :class:`PcBoard` and an
unmodified :class:`KvmMemoryListener`.

The devices SeaBIOS needs, and nothing more:

* PCI configuration mechanism #1 (0xcf8 address, 0xcfc-0xcff data; byte, word and
  dword): an i440FX host bridge at 00:00.0 (8086:1237, class 0600) whose PAM
  registers are the board's, and a PIIX3 ISA bridge at 00:01.0 (8086:7000, class
  0601, multi-function); both with subsystem 1af4:1100, or SeaBIOS does not take
  the machine for QEMU; no BARs (they read back 0); absent functions read all ones;
* fw_cfg, port interface only (0x510 16-bit selector, 0x511 data): the signature
  ``QEMU`` (key 0x0000), interface ID 1, no DMA (0x0001), the vCPU count (0x0005),
  no boot menu (0x000e), the maximum vCPU count (0x000f) and the file directory
  (0x0019; our option ROM as ``genroms/flatview.bin`` when the workload follows);
* the handover port 0x513: our option ROM writes it once SeaBIOS boots it;
* CMOS/RTC at 0x70/0x71: RAM above 16 MiB in 64 KiB units at 0x34/0x35 (SeaBIOS
  reads it there when fw_cfg has no ``etc/e820``), status registers A/B/D;
* the debug console at 0x402 (what SeaBIOS prints; reads back 0xe9), port 0x92;
  every other port reads all ones (no keyboard controller: SeaBIOS warns and goes
  on).

In the kernel: the irqchip (PIC, IOAPIC, LAPIC) and the PIT with tick re-injection
off.  SeaBIOS runs at CPL0, in KVM's instruction emulator on hosts without
hardware paging support for nested guests (about 3 s to its boot prompt).
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TextIO

import attrs

from flatview import PcBoard
from flatview.cli.pcboot.handover_rom import FILE
from kvm_backend import IoExit, Kvm, MmioExit, StopExit, Vcpu, VcpuRunner, VcpuThread, Vm
from kvm_backend.abi import KVM_MP_STATE_RUNNABLE, KVM_MP_STATE_UNINITIALIZED
from listeners import CommitReport, KvmMemoryListener, Mode

MiB = 1 << 20
SEABIOS = Path("/usr/share/seabios/bios-256k.bin")
"""Debian's SeaBIOS build for 256 KiB flash (the one QEMU's pc machine uses)."""
DONE = "No bootable device"
HANDOVER_PORT = 0x513


def seabios_unavailable_reason() -> str | None:
    if not SEABIOS.exists():
        return f"{SEABIOS} not found (Debian's seabios package)"
    return None


class PciConfig:
    """Configuration mechanism #1 with the two functions SeaBIOS expects on a pc."""

    FUNCTIONS: ClassVar[dict[tuple[int, int], tuple[int, int, int, int]]] = {
        (0, 0): (0x8086, 0x1237, 0x0600, 0x00),  # i440FX host bridge
        (1, 0): (0x8086, 0x7000, 0x0601, 0x80),  # PIIX3 ISA bridge (multi-function)
    }
    """(device, function) -> (vendor, device ID, class, header type)."""

    def __init__(self, board: PcBoard) -> None:
        self.board = board
        self.address = 0
        self.last_write: tuple[int, bytes] = (0, b"")
        """The host bridge's last configuration write: (register, bytes)."""

    def _space(self, dev: int, fn: int) -> bytes | None:
        ids = self.FUNCTIONS.get((dev, fn))
        if ids is None:
            return None
        vendor, device, cls, header = ids
        space = bytearray(256)
        struct.pack_into("<HH", space, 0, vendor, device)
        struct.pack_into("<H", space, 0x0A, cls)
        space[0x0E] = header
        struct.pack_into("<HH", space, 0x2C, 0x1AF4, 0x1100)  # subsystem: QEMU's
        if (dev, fn) == (0, 0):
            base = self.board.pam_base
            space[base : base + len(self.board.pam_regs)] = bytes(self.board.pam_regs)
        return bytes(space)

    def _target(self, port: int) -> tuple[int, int, int] | None:
        a = self.address
        if not a & 0x80000000 or (a >> 16) & 0xFF:
            return None  # disabled, or a bus other than 0
        return (a >> 11) & 31, (a >> 8) & 7, (a & 0xFC) + (port - 0xCFC)

    def read(self, port: int, size: int) -> int:
        if port == 0xCF8:
            return self.address & ((1 << (8 * size)) - 1)
        target = self._target(port)
        space = self._space(*target[:2]) if target is not None else None
        if target is None or space is None:
            return (1 << (8 * size)) - 1
        return int.from_bytes(space[target[2] : target[2] + size], "little")

    def write(self, port: int, data: bytes) -> None:
        if port == 0xCF8 and len(data) == 4:
            self.address = int.from_bytes(data, "little")
            return
        target = self._target(port)
        if target is not None and target[:2] == (0, 0):
            self.last_write = (target[2], data)
            self.board.write_config(target[2], data)  # PAM: one commit per write


class FwCfg:
    """fw_cfg's port interface with the few items SeaBIOS reads on this board."""

    FIRST_FILE = 0x0020

    def __init__(self, cpus: int, files: dict[str, bytes] | None = None) -> None:
        self.items = {
            0x0000: b"QEMU",
            0x0001: struct.pack("<I", 1),  # interface: traditional, no DMA
            0x0005: struct.pack("<H", cpus),
            0x000E: struct.pack("<H", 0),  # no boot menu
            0x000F: struct.pack("<H", cpus),
        }
        directory = struct.pack(">I", len(files or {}))  # big-endian, as QEMU's
        for key, (name, data) in enumerate((files or {}).items(), self.FIRST_FILE):
            directory += struct.pack(">IHH", len(data), key, 0) + name.encode().ljust(56, b"\0")
            self.items[key] = data
        self.items[0x0019] = directory
        self.key = 0
        self.offset = 0

    def select(self, key: int) -> None:
        self.key, self.offset = key, 0

    def read(self, n: int) -> bytes:
        item = self.items.get(self.key, b"")
        out = item[self.offset : self.offset + n].ljust(n, b"\0")
        self.offset += n
        return out


class Cmos:
    """The RTC's CMOS bytes SeaBIOS reads: the RAM size and the status registers."""

    def __init__(self, ram_size: int) -> None:
        self.bytes = bytearray(128)
        above16 = max(0, ram_size - 16 * MiB) // (64 * 1024)
        self.bytes[0x34], self.bytes[0x35] = above16 & 0xFF, min(above16 >> 8, 0xFF)
        self.bytes[0x30] = self.bytes[0x31] = 0xFF  # extended memory (KiB): at least 63 MiB
        self.bytes[0x0A], self.bytes[0x0B], self.bytes[0x0D] = 0x26, 0x02, 0x80
        self.index = 0


class FirmwareDevices:
    """The devices above, for one board: ``io`` serves SeaBIOS's port accesses.
    ``on_config`` runs after each PCI configuration write (a PAM write commits),
    ``on_line`` for each line of the debug console; ``handover`` is set when our
    option ROM asks the VMM to take over."""

    def __init__(
        self,
        board: PcBoard,
        ram_size: int,
        cpus: int,
        on_config: Callable[[], None],
        on_line: Callable[[str], None],
        option_rom: bytes | None = None,
    ) -> None:
        self.pci = PciConfig(board)
        files = {FILE: option_rom} if option_rom is not None else {}
        self.fw_cfg = FwCfg(cpus, files)
        self.cmos = Cmos(ram_size)
        self.on_config = on_config
        self.on_line = on_line
        self.console = ""
        self._line = ""
        self.handover = threading.Event()
        self.exits: dict[int, int] = {}
        """Port exits the firmware made, by port."""

    def io(self, exit: IoExit) -> bytes | None:
        p, n = exit.port, exit.size * exit.count
        self.exits[p] = self.exits.get(p, 0) + 1
        if exit.is_write:
            data = exit.data[:n]
            if p == 0xCF8 or 0xCFC <= p <= 0xCFF:
                self.pci.write(p, data[: exit.size])
                self.on_config()
            elif p == 0x510:
                self.fw_cfg.select(int.from_bytes(data[:2], "little"))
            elif p == 0x70:
                self.cmos.index = data[0] & 0x7F
            elif p == 0x402:
                self._console(data.decode("latin-1"))
            elif p == HANDOVER_PORT:
                self.handover.set()
            return None
        if p == 0xCF8 or 0xCFC <= p <= 0xCFF:
            return self.pci.read(p, exit.size).to_bytes(exit.size, "little") * exit.count
        if p == 0x511:
            return self.fw_cfg.read(n)
        if p == 0x71:
            return bytes([self.cmos.bytes[self.cmos.index]]) * n
        if p == 0x402:
            return b"\xe9" * n
        if p == 0x92:
            return b"\x02" * n  # A20 on
        return b"\xff" * n

    def _console(self, text: str) -> None:
        self.console += text
        self._line += text
        while "\n" in self._line:
            line, self._line = self._line.split("\n", 1)
            self.on_line(line)


KVMCLOCK_MSRS = (0x11, 0x12, 0x4B564D00, 0x4B564D01)
"""kvmclock's wall-clock and system-time MSRs, old and new numbers."""


def _real_mode_segment(seg: Any, selector: int, base: int, code: bool) -> None:
    seg.selector, seg.base, seg.limit = selector, base, 0xFFFF
    seg.type = 0xB if code else 0x3
    seg.present, seg.s, seg.dpl, seg.db, seg.l, seg.g = 1, 1, 0, 0, 0, 0
    seg.avl = seg.unusable = 0


def reset_vcpu(vcpu: Vcpu, bootstrap: bool) -> None:
    """As a reset leaves a vCPU: real mode at F000:FFF0 (the bootstrap processor)
    or waiting for INIT and SIPI (an AP); kvmclock off first, or KVM keeps writing
    its clock into the page the firmware gave it (0xe8c20, in the BIOS shadow)."""
    vcpu.set_msrs(dict.fromkeys(KVMCLOCK_MSRS, 0))
    sregs = vcpu.get_sregs()
    _real_mode_segment(sregs.cs, 0xF000, 0xFFFF0000, code=True)
    for seg in (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss):
        _real_mode_segment(seg, 0, 0, code=False)
    sregs.tr.selector, sregs.tr.base, sregs.tr.limit, sregs.tr.type = 0, 0, 0xFFFF, 0xB
    sregs.tr.present, sregs.tr.s = 1, 0
    sregs.ldt.selector, sregs.ldt.base, sregs.ldt.limit, sregs.ldt.type = 0, 0, 0xFFFF, 0x2
    sregs.ldt.present, sregs.ldt.s = 1, 0
    sregs.gdt.base, sregs.gdt.limit = 0, 0xFFFF
    sregs.idt.base, sregs.idt.limit = 0, 0xFFFF
    sregs.cr0, sregs.cr2, sregs.cr3, sregs.cr4, sregs.efer = 0x60000010, 0, 0, 0, 0
    vcpu.set_sregs(sregs)
    regs = vcpu.get_regs()
    for name in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp"):
        setattr(regs, name, 0)
    for k in range(8, 16):
        setattr(regs, f"r{k}", 0)
    regs.rip, regs.rflags = 0xFFF0, 0x2
    vcpu.set_regs(regs)
    vcpu.set_mp_state(KVM_MP_STATE_RUNNABLE if bootstrap else KVM_MP_STATE_UNINITIALIZED)


def load_seabios(board: PcBoard) -> None:
    """SeaBIOS's image into the board's flash (at power-on, and again at a reset:
    the workload overwrites the flash with its own pattern)."""
    bios = board.bios.ram_block
    assert bios is not None
    bios.write(0, SEABIOS.read_bytes()[: bios.used_length])


def start_kvm(kvm: Kvm, cpus: int) -> tuple[Vm, list[Vcpu]]:
    """A VM with the in-kernel irqchip and PIT (no tick re-injection) and ``cpus``
    vCPUs in their reset state (the APs wait for the firmware's SIPI)."""
    vm = kvm.create_vm(slot_zap_all=False)
    vm.create_irqchip()
    vm.create_pit(reinject=False)
    cpuid = kvm.supported_cpuid()
    vcpus = [vm.create_vcpu(i) for i in range(cpus)]
    for vcpu in vcpus:
        vcpu.set_cpuid(cpuid)
    return vm, vcpus


@attrs.define
class FirmwareBoot:
    """What one boot showed."""

    console: str = ""
    """Everything SeaBIOS printed on the debug console."""
    log: list[str] = attrs.field(factory=list)
    """Console lines and commit summaries, in time order."""
    commits: list[CommitReport] = attrs.field(factory=list)
    seconds: float = 0.0
    stops: list[str] = attrs.field(factory=list)
    finished: bool = False


class FirmwareVmm:
    """A pc board with SeaBIOS in its flash, the devices above, and ``cpus`` vCPUs
    (the bootstrap processor runs SeaBIOS; it starts the others through the
    in-kernel LAPIC itself)."""

    def __init__(
        self,
        ram_size: int = 128 * MiB,
        mode: Mode = "auto",
        out: TextIO | None = None,
        cpus: int = 1,
    ) -> None:
        reason = seabios_unavailable_reason()
        if reason is not None:
            raise FileNotFoundError(reason)
        self.board = PcBoard(ram_size=ram_size, vga=False)
        load_seabios(self.board)
        self.out = out
        self.result = FirmwareBoot()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._reported = 0
        self.devices = FirmwareDevices(self.board, ram_size, cpus, self._commits, self._console)
        self.kvm = Kvm()
        self.vm, self.vcpus = start_kvm(self.kvm, cpus)
        self.runner = VcpuRunner(self.vcpus, self)
        self.kl = KvmMemoryListener(self.vm, self.board.memory, vcpus=self.runner, mode=mode)
        self._reported = len(self.kl.reports)

    # -- the exit handler ---------------------------------------------------------------
    def io(self, vcpu: VcpuThread, exit: IoExit) -> bytes | None:
        return self.devices.io(exit)

    def mmio(self, vcpu: VcpuThread, exit: MmioExit) -> bytes | None:
        return None if exit.is_write else b"\xff" * exit.length

    def stop(self, vcpu: VcpuThread, exit: StopExit) -> bool:
        with self._lock:
            self.result.stops.append(f"vCPU {vcpu.index}: {exit}")
        self._done.set()
        return False

    # -- output ------------------------------------------------------------------------
    def _emit(self, line: str) -> None:
        self.result.log.append(line)
        if self.out is not None:
            print(line, file=self.out)

    def _console(self, line: str) -> None:
        with self._lock:
            self._emit(f"seabios: {line}")
            if DONE in line:
                self._done.set()

    def _commits(self) -> None:
        with self._lock:
            for report in self.kl.reports[self._reported :]:
                self.result.commits.append(report)
                self._emit(f"  commit {len(self.result.commits)}: {report.line()}")
            self._reported = len(self.kl.reports)

    # -- running -----------------------------------------------------------------------
    def run(self, timeout: float = 60.0) -> FirmwareBoot:
        """Boot until SeaBIOS says there is nothing to boot (or ``timeout``)."""
        t0 = time.monotonic()
        self.runner.start()
        self.result.finished = self._done.wait(timeout) and not self.result.stops
        self.result.seconds = time.monotonic() - t0
        self.result.console = self.devices.console
        return self.result

    def close(self) -> None:
        self.runner.stop()
        self.kl.close()
        for v in self.vcpus:
            v.close()
        self.vm.close()
        self.kvm.close()
        for mr in (self.board.ram, self.board.bios, self.board.option_rom):
            mr.close()
