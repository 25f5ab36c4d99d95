"""Real, unmodified SeaBIOS (Debian's seabios package) boots on the pc board on
real KVM; its PAM writes go through PcBoard and an unmodified KVM listener."""

from __future__ import annotations

import pytest

from flatview import PcBoard
from flatview.cli.pcboot.firmware import DONE, FirmwareBoot, FirmwareVmm
from listeners import Mode

pytestmark = pytest.mark.seabios

MiB = 1 << 20


def boot(mode: Mode = "auto", cpus: int = 4) -> tuple[FirmwareBoot, FirmwareVmm]:
    vmm = FirmwareVmm(ram_size=128 * MiB, mode=mode, cpus=cpus)
    try:
        return vmm.run(timeout=60), vmm
    finally:
        vmm.close()


def test_seabios_boots_to_its_prompt_and_reports_the_board() -> None:
    result, vmm = boot()
    assert result.finished and result.stops == [], result.stops
    console = result.console
    assert "SeaBIOS (version 1." in console and DONE in console
    assert "PCI: init bdf=00:00.0 id=8086:1237" in console  # our i440FX
    assert "PCI: init bdf=00:01.0 id=8086:7000" in console  # our PIIX3
    assert "0000000000100000 - 0000000008000000 = 1 RAM" in console  # 128 MiB from CMOS
    assert "Found 4 cpu(s) max supported 4 cpu(s)" in console  # APs started by SeaBIOS
    # SeaBIOS's four PAM dword writes, as PcBoard.seabios_pam_sequence() has them
    expected = PcBoard(ram_size=128 * MiB, vga=False)
    for _label, addr, value in expected.seabios_pam_sequence():
        expected.write_config(addr, value.to_bytes(4, "little"))
    assert vmm.board.pam_regs == expected.pam_regs
    assert len(result.commits) == 4


def test_each_firmware_commit_beats_qemus_plan_and_is_logged_where_it_happened() -> None:
    result, _vmm = boot(cpus=1)
    for report in result.commits:
        q = report.summary()
        assert report.plan.ioctls < q.qemu_ioctls
        assert report.plan.unchanged_bytes_unmapped <= min(q.qemu_unmapped_bytes, 256 << 10)
    lines = result.log
    commits = [i for i, line in enumerate(lines) if line.startswith("  commit ")]
    assert len(commits) == 4
    assert any(line.startswith("seabios: ") for line in lines[: commits[0]])  # POST began
    assert any(DONE in line for line in lines[commits[-1] :])  # ... and went on after
