"""The pcboot example on real KVM: the guest's own report is right in safe modes,
and naive mode shows the failure the library prevents."""

from __future__ import annotations

import pytest

from flatview.cli.pcboot.vmm import PcVmm, Report
from listeners.kvm_listener import CommitReport, Mode


def run(mode: Mode, iterations: int) -> tuple[Report, list[CommitReport]]:
    vmm = PcVmm(vcpus=4, mode=mode, iterations=iterations, log=None)
    try:
        return vmm.run(timeout=60), vmm.kl.reports
    finally:
        vmm.close()


@pytest.mark.kvm
@pytest.mark.parametrize("mode", ["auto", "optimistic"])
def test_pcboot_guest_report_is_right(mode: Mode) -> None:
    r, reports = run(mode, 3)
    assert r.faults == 0, r.stops
    assert r.checksums_match
    assert r.dropped_writes == 3  # one per iteration
    assert all(n > 0 for n in r.worker_sweeps)
    assert r.serial.startswith("flatview pcboot")
    assert r.commits == 8 * 3  # 6 PAM + 2 hotplug per iteration
    assert r.ok
    hotplug = [
        rep
        for rep in reports
        if rep.plan.ops and all(op.mapping.name == "hotplug-ram" for op in rep.plan.ops)
    ]
    assert len(hotplug) == 2 * 3  # grow and shrink: no pause, nothing unchanged unmapped
    assert not any(rep.paused or rep.plan.unchanged_bytes_unmapped for rep in hotplug)


@pytest.mark.kvm
def test_pcboot_naive_mode_breaks_the_guest() -> None:
    r, _ = run("naive", 10)
    assert r.faults > 0 or not r.checksums_match


@pytest.mark.kvm
def test_embed_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from examples import embed

    embed.main()
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("split: 2 ioctls") and "unchanged unmapped 0x0" in out[0]
    assert "pause no" in out[1]
