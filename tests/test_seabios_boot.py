"""Real, unmodified SeaBIOS (Debian's seabios package) boots on the pc board on
real KVM; its PAM writes go through PcBoard and an unmodified KVM listener."""

from __future__ import annotations

import pytest

from flatview import PcBoard
from flatview.cli.pcboot.firmware import DONE, FirmwareBoot, FirmwareVmm
from flatview.cli.pcboot.handover_rom import handover_rom
from flatview.cli.pcboot.vmm import PcVmm
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


def test_firmware_mode_hands_over_runs_the_workload_and_posts_again_after_a_reset() -> None:
    """SeaBIOS on 4 vCPUs boots our option ROM, which hands the machine over; the
    64-bit workload reshapes memory (PAM, hotplug) under running workers, then asks
    for a reset through 0xcf9; SeaBIOS runs a second POST up to our ROM again."""
    vmm = PcVmm(vcpus=4, iterations=2, log=None, firmware=True)
    try:
        r = vmm.run(timeout=60)
    finally:
        vmm.close()
    out = r.firmware
    assert out.count("Found 4 cpu(s) max supported 4 cpu(s)") == 2  # once per POST
    assert out.count("Booting from ROM...") == 2  # our ROM's hand-off, twice
    assert "SeaBIOS (version 1." in out
    assert r.stops == [] and r.faults == 0
    # the workload's own report: checksums, writes to the read-only shadow dropped
    assert r.ok and r.checksums_match and r.dropped_writes == 2
    assert len(r.worker_sweeps) == 3 and all(n > 0 for n in r.worker_sweeps)
    # each POST: SeaBIOS's four PAM dword writes, as the board's sequence has them,
    # the slot table equal to the rendered view after each
    sequence = [(addr, value) for _label, addr, value in vmm.board.seabios_pam_sequence()]
    assert r.posts == [sequence, sequence]
    assert r.in_sync == [True] * 8
    # 4 + the handover's 2 (PAM back to reset) + 8 per workload iteration + 4
    assert r.commits == 4 + 2 + 8 * 2 + 4


def test_the_handover_rom_is_a_valid_pnp_option_rom() -> None:
    rom = handover_rom()
    assert rom[:3] == b"\x55\xaa\x01" and len(rom) == 512 and sum(rom) % 256 == 0
    pnp = int.from_bytes(rom[0x1A:0x1C], "little")
    assert rom[pnp : pnp + 4] == b"$PnP" and sum(rom[pnp : pnp + 32]) % 256 == 0
    bev = int.from_bytes(rom[pnp + 26 : pnp + 28], "little")
    assert rom[bev : bev + 6] == bytes([0xBA, 0x13, 0x05, 0xB0, 0x01, 0xEE])  # out 0x513


def test_without_a_valid_handover_rom_the_vmm_reports_it_and_closes_cleanly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SeaBIOS skips a ROM without the 55 AA signature and stops at its prompt: the
    run ends at its timeout with the reason, nothing hangs, everything closes."""
    import flatview.cli.pcboot.vmm as vmm_module

    monkeypatch.setattr(vmm_module, "handover_rom", lambda: bytes(512))
    vmm = PcVmm(vcpus=2, iterations=1, log=None, firmware=True)
    try:
        r = vmm.run(timeout=8)
    finally:
        vmm.close()
    assert r.stops == ["SeaBIOS never booted the handover ROM"]
    assert DONE in r.firmware and "Booting from ROM" not in r.firmware
    assert r.commits == 4 and r.in_sync == [True] * 4  # its four PAM commits, in sync
