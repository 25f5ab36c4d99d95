"""A pc-like VMM in one file: board, devices, vCPUs and the KVM listener.

Board (flatview.pc.PcBoard): pc.ram (resizable) behind ram-below-4g, pc.bios at
the top of 4 GiB with its isa-bios alias at 0xe0000, pc.rom at 0xc0000, the 13
PAM segments with their four aliases each, vga-lowmem (MMIO) at 0xa0000; plus a
hotplug RAM device at 1 GiB that the guest grows and shrinks.

Ports: 0xcf8/0xcfc config space (only the i440fx PAM registers 0x59-0x5f do
anything: a dword write re-applies all 13 segments in one commit), 0x3f8 serial
output, 0x510 hotplug RAM size in MiB, 0x502-0x506 the boot vCPU's checksums,
0x512 boot done; workers use 0x10 (mismatch), 0x11/0x12 (stop).
"""

from __future__ import annotations

import struct
import sys
import threading
from typing import TextIO

import attrs

from flatview import AccessError, MmioOps, PcBoard
from flatview.cli.pcboot.firmware import (
    FirmwareDevices,
    load_seabios,
    reset_vcpu,
    start_kvm,
)
from flatview.cli.pcboot.guest import BOOT
from flatview.cli.pcboot.handover_rom import handover_rom
from kvm_backend import IoExit, Kvm, MmioExit, SimVm, StopExit, Vcpu, VcpuRunner, VcpuThread
from kvm_backend.testing import guest
from kvm_backend.testing import guest_code as gc
from listeners import KvmMemoryListener, Mode, desired_mappings, trace_line
from listeners.slot_layout import SlotMapping

MiB = 1 << 20
HOTPLUG_GPA = 0x40000000
WORK_BASE, WORK_PAGES = 0xD0000, 16  # PAM segments 5-8, reshaped by every commit
WORKER_CODE = 0xC0000  # PAM segment 1: workers execute from the reshaped range
COUNTERS = 0x50000


@attrs.define
class Report:
    commits: int = 0
    ioctls: int = 0
    pauses: int = 0
    qemu_ioctls: int = 0
    faults: int = 0
    dropped_writes: int = 0
    vga_writes: int = 0
    serial: str = ""
    checksums: dict[int, list[int]] = attrs.field(factory=dict)
    expected: dict[int, int] = attrs.field(factory=dict)
    worker_sweeps: list[int] = attrs.field(factory=list)
    stops: list[str] = attrs.field(factory=list)
    iterations: int = 0
    firmware: str = ""
    """What SeaBIOS printed on its debug console (firmware mode)."""
    posts: list[list[tuple[int, int]]] = attrs.field(factory=list)
    """Per POST (firmware mode): SeaBIOS's PAM writes (register, value), one commit each."""
    in_sync: list[bool] = attrs.field(factory=list)
    """After each firmware commit: the slot table maps exactly what the view renders."""

    @property
    def checksums_match(self) -> bool:
        return all(
            self.checksums.get(port) == [want] * self.iterations
            for port, want in self.expected.items()
        )

    @property
    def ok(self) -> bool:
        return (
            self.faults == 0
            and self.checksums_match
            and self.dropped_writes == self.iterations
            and all(n > 0 for n in self.worker_sweeps)
        )


class PcVmm:
    def __init__(
        self,
        vcpus: int = 4,
        mode: Mode = "auto",
        iterations: int = 3,
        log: TextIO | None = sys.stdout,
        firmware: bool = False,
    ) -> None:
        """``firmware``: SeaBIOS (Debian's package) boots first; our option ROM then
        hands the machine over and the workload below runs on every vCPU."""
        self.report = Report(iterations=iterations)
        self.log = log
        self.lock = threading.Lock()
        self.board = PcBoard(
            ram_size=512 * MiB,
            ram_max_size=512 * MiB,
            vga=True,
            vga_ops=MmioOps(write=self._vga_write),
        )
        self.hotplug = self.board.system.ram("hotplug-ram", 2 * MiB, max_size=8 * MiB)
        self.board.root.add_subregion(HOTPLUG_GPA, self.hotplug)
        self.kvm = Kvm()
        self.iterations = iterations
        self.firmware: FirmwareDevices | None = None
        self.firmware_mode = firmware
        self.reset_requested = threading.Event()
        self._seen = 0
        if firmware:
            load_seabios(self.board)
            self.vm, vcpu_list = start_kvm(self.kvm, vcpus)
        else:
            self._load_images()
            self.vm = self.kvm.create_vm(slot_zap_all=False)  # a delete zaps only its slot
            vcpu_list = [self.vm.create_vcpu(i) for i in range(vcpus)]
        self.vcpu_list = vcpu_list
        if firmware:
            self.firmware = self._new_post()
        self.runner = VcpuRunner(vcpu_list, self)
        self.kl = KvmMemoryListener(self.vm, self.board.memory, vcpus=self.runner, mode=mode)
        self._seen = len(self.kl.reports)
        # the same commits, planned as QEMU's listener would, on a simulated KVM
        self.qemu = KvmMemoryListener(SimVm(), self.board.memory, qemu_like=True)
        if not firmware:
            self._start_vcpus(vcpu_list, iterations)
        self._cf8 = 0

    # -- setup -------------------------------------------------------------------------
    def _load_images(self) -> None:
        ram = self.board.ram.ram_block
        bios = self.board.bios.ram_block
        rom = self.board.option_rom.ram_block
        hot = self.hotplug.ram_block
        assert ram and bios and rom and hot
        guest.write_system_tables(ram.buffer(), BOOT)
        for off in range(0, bios.used_length, 8):  # a recognisable BIOS image
            bios.write(off, struct.pack("<Q", (off * 0x9E3779B1 + 0x5EED) & (2**64 - 1)))
        for p in range(WORK_PAGES):  # same bytes in RAM and option ROM: PAM flips are invisible
            gpa = WORK_BASE + p * 4096
            ram.write(gpa, struct.pack("<Q", gpa))
            rom.write(gpa - 0xC0000, struct.pack("<Q", gpa))
        ram.write(WORKER_CODE, gc.SWEEP)
        rom.write(0, gc.SWEEP)
        for off in range(0, hot.used_length, 8):
            hot.write(off, struct.pack("<Q", off ^ 0xA5A5A5A5))
        shadow = bios.read(bios.used_length - 0x20000, 0x20000)
        self.report.expected = {
            0x502: sum(struct.unpack("<16384Q", shadow)) & 0xFFFFFFFF,
            0x503: struct.unpack_from("<Q", shadow, 0x10000)[0] & 0xFFFFFFFF,
            0x504: sum(range(HOTPLUG_GPA + 2 * MiB, HOTPLUG_GPA + 8 * MiB, 8)) & 0xFFFFFFFF,
            0x505: sum(range(HOTPLUG_GPA + 2 * MiB, HOTPLUG_GPA + 8 * MiB, 8)) & 0xFFFFFFFF,
            0x506: sum(off ^ 0xA5A5A5A5 for off in range(0, 2 * MiB, 8)) & 0xFFFFFFFF,
        }

    def _start_vcpus(self, vcpus: list[Vcpu], iterations: int, keep_cpuid: bool = False) -> None:
        """Every vCPU into the 64-bit workload at CPL3 (``keep_cpuid``: they ran
        SeaBIOS already, with the CPUID they keep)."""
        cpuid = self.kvm.supported_cpuid()
        boot, *workers = vcpus
        guest.enter_user_mode(
            self.kvm,
            boot,
            guest.CODE,
            {"r15": iterations, "r14": guest.STOP_FLAG},
            cpuid,
            keep_cpuid=keep_cpuid,
        )
        for w in workers:
            guest.enter_user_mode(
                self.kvm,
                w,
                WORKER_CODE,
                {
                    "rdi": WORK_BASE,
                    "rsi": WORK_PAGES,
                    "r8": COUNTERS + 8 * w.index,
                    "r9": 0,
                    "r10": guest.STOP_FLAG,
                    "r12": guest.progress_addr(w.index),
                },
                cpuid,
                keep_cpuid=keep_cpuid,
            )

    # -- devices (called on vCPU threads) -------------------------------------------------
    def _vga_write(self, offset: int, size: int, value: int) -> None:
        with self.lock:
            self.report.vga_writes += 1

    def _commit_hook(self, before: int) -> None:
        self._seen = len(self.kl.reports)
        for rep in self.kl.reports[before:]:
            self.report.commits += 1
            self.report.ioctls += rep.plan.ioctls
            self.report.pauses += rep.paused
            if self.log:
                print(
                    f"commit {self.report.commits}: {rep.line()}",
                    file=self.log,
                )
                for op in rep.plan.ops:
                    print("    " + trace_line(op), file=self.log)

    def _firmware_commit(self) -> None:
        before = self._seen
        self._commit_hook(before)
        if self.firmware is not None and len(self.kl.reports) > before:
            reg, data = self.firmware.pci.last_write
            self.report.posts[-1].append((reg, int.from_bytes(data, "little")))
            want = desired_mappings(self.board.memory.flatview)
            self.report.in_sync.append(_pages([s.mapping for s in self.kl.slots]) == _pages(want))

    def _firmware_line(self, line: str) -> None:
        self.report.firmware += line + "\n"
        if self.log:
            print(f"seabios: {line}", file=self.log)

    def _pam_to_reset(self) -> None:
        """Every PAM register back to 0 (all segments to PCI), as after a reset: the
        two config dwords SeaBIOS writes, zeroed through the board (one commit each
        that changes something)."""
        before = len(self.kl.reports)
        for _label, addr, _value in self.board.seabios_pam_sequence()[:2]:
            self.board.write_config(addr, bytes(4))
        self._commit_hook(before)

    def _new_post(self) -> FirmwareDevices:
        """The devices SeaBIOS meets on a (re)boot, with our option ROM to hand over."""
        self.report.posts.append([])
        return FirmwareDevices(
            self.board,
            self.board.ram.size,
            len(self.vcpu_list),
            self._firmware_commit,
            self._firmware_line,
            handover_rom(),
        )

    def _reset(self) -> None:
        """The workload asked for a reset (0xcf9): every vCPU paused, PAM back to its
        reset state through the board, SeaBIOS back in the flash, every vCPU reset
        (kvmclock off, the BSP at the reset vector, the APs waiting for SIPI);
        SeaBIOS then runs a second POST."""
        self.runner.pause_all()
        try:
            buf = self.board.ram.ram_block.buffer()  # type: ignore[union-attr]
            self.report.worker_sweeps = [  # before the POST reuses that memory
                struct.unpack_from("<Q", buf, guest.progress_addr(i))[0]
                for i in range(1, len(self.vcpu_list))
            ]
            self._pam_to_reset()
            load_seabios(self.board)
            for vcpu in self.vcpu_list:
                reset_vcpu(vcpu, bootstrap=vcpu.index == 0)
            self.firmware = self._new_post()
            if self.log:
                print("reset: SeaBIOS runs again", file=self.log)
        finally:
            self.runner.resume_all()

    def _handover(self) -> None:
        """Our option ROM asked for the machine: every vCPU paused, PAM back to its
        reset state (the workload shadows the BIOS itself), the workload's images
        written, every vCPU started in it, resumed."""
        assert self.firmware is not None
        self.runner.pause_all()
        try:
            self._pam_to_reset()
            self._load_images()
            self._start_vcpus(self.vcpu_list, self.iterations, keep_cpuid=True)
            for vcpu in self.vcpu_list:
                vcpu.set_runnable()  # out of SeaBIOS's halt loop or its wait for SIPI
            self.firmware = None
            if self.log:
                print("handover: the workload runs on every vCPU", file=self.log)
        finally:
            self.runner.resume_all()

    def io(self, vcpu: VcpuThread, exit: IoExit) -> bytes | None:
        if self.firmware is not None:
            return self.firmware.io(exit)
        value = int.from_bytes(exit.data[:4], "little") if exit.data else 0
        port = exit.port
        if port == 0xCF8:
            self._cf8 = value
        elif port == 0xCFC and exit.is_write and self._cf8 & 0x80000000:
            before = len(self.kl.reports)
            self.board.write_config(self._cf8 & 0xFC, exit.data.ljust(4, b"\0")[:4])
            self._commit_hook(before)
        elif port == 0x3F8:
            self.report.serial += exit.data.decode("latin-1")
        elif port == 0x510:
            before = len(self.kl.reports)
            self.hotplug.set_size(value * MiB)
            self._commit_hook(before)
        elif 0x502 <= port <= 0x506:
            self.report.checksums.setdefault(port, []).append(value)
        elif port == 0x512:
            if not self.firmware_mode:  # (in firmware mode a reset request follows)
                vcpu.stop()
        elif port == 0xCF9 and exit.is_write and value & 0x04:
            self.reset_requested.set()
        elif port == gc.PORT_REPORT:
            with self.lock:
                self.report.faults += 1
        elif port == gc.PORT_DONE and not self.firmware_mode:
            vcpu.stop()  # (in firmware mode the workers spin until the reset)
        return None if exit.is_write else b"\xff" * (exit.size * exit.count)

    def mmio(self, vcpu: VcpuThread, exit: MmioExit) -> bytes | None:
        fr = self.board.memory.flatview.lookup(exit.addr)
        ram = fr is not None and fr.region.is_ram
        if ram and not (exit.is_write and fr is not None and fr.readonly):
            with self.lock:  # an exit on RAM the guest may access: the update was visible
                self.report.faults += 1
            return None if exit.is_write else b"\xff" * exit.length
        try:
            if exit.is_write:
                dropped = self.board.memory.write(exit.addr, exit.data)
                with self.lock:
                    self.report.dropped_writes += bool(dropped)
                return None
            return self.board.memory.read(exit.addr, exit.length)
        except AccessError:
            return None if exit.is_write else b"\xff" * exit.length

    def stop(self, vcpu: VcpuThread, exit: StopExit) -> bool:
        with self.lock:
            self.report.faults += 1
            self.report.stops.append(f"vCPU {vcpu.index}: {exit.reason} rip={exit.rip}")
        return False

    # -- run ---------------------------------------------------------------------------
    def run(self, timeout: float = 60.0) -> Report:
        self.runner.start()
        try:
            if self.firmware_mode:
                return self._run_firmware(timeout)
            self.runner.wait(timeout)
        finally:
            self.runner.stop()
        buf = self.board.ram.ram_block.buffer()  # type: ignore[union-attr]
        self.report.worker_sweeps = [
            struct.unpack_from("<Q", buf, guest.progress_addr(i))[0]
            for i in range(1, len(self.runner.threads))
        ]
        self.report.qemu_ioctls = sum(r.plan.ioctls for r in self.qemu.reports[1:])
        return self.report

    def _run_firmware(self, timeout: float) -> Report:
        """SeaBIOS's POST, the handover, the workload, its reset, a second POST up to
        the handover again (the runner is stopped by ``run``)."""
        assert self.firmware is not None
        if not self.firmware.handover.wait(timeout):
            self.report.stops.append("SeaBIOS never booted the handover ROM")
            return self.report
        self._handover()
        if not self.reset_requested.wait(timeout):
            self.report.stops.append("the workload never asked for a reset")
            return self.report
        self._reset()
        assert self.firmware is not None
        if not self.firmware.handover.wait(timeout):
            self.report.stops.append("the second POST never reached the handover ROM")
        self.report.qemu_ioctls = sum(r.plan.ioctls for r in self.qemu.reports[1:])
        return self.report

    def close(self) -> None:
        for t in self.runner.threads:
            t.vcpu.close()
        self.vm.close()
        self.kvm.close()
        for mr in (self.board.ram, self.board.bios, self.board.option_rom, self.hotplug):
            mr.close()


def _pages(mappings: list[SlotMapping]) -> dict[int, tuple[int, int]]:
    """gpa page -> (host address, flags): what a slot table maps, page by page."""
    return {g: (m.hva + (g - m.gpa), m.flags) for m in mappings for g in range(m.gpa, m.end, 4096)}
