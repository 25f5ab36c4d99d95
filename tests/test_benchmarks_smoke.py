"""Each benchmark runs end to end in reduced size and prints its JSON shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import kick, render


def test_render_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    render.main(smoke=True)
    doc = json.loads(capsys.readouterr().out)
    assert doc["benchmark"] == "render"
    assert {"kernel", "python"} <= set(doc["machine"])
    for n in ("100", "1000"):
        row = doc["results"][n]
        assert row["render"]["median_us"] > 0
        for kind in ("toggle_commit", "toggle_commit_kvm_sim"):
            assert row[f"{kind}_incremental"]["n"] == row[f"{kind}_full"]["n"] == 6


@pytest.mark.kvm
def test_kick_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    kick.main(smoke=True)
    doc = json.loads(capsys.readouterr().out)
    pause = doc["results"]["pause_all"]
    assert set(pause) == {"1", "2", "4"}
    assert all(v["faults"] == 0 and v["median_us"] > 0 for v in pause.values())
    assert set(doc["results"]["ioctl"]) == {"create", "delete", "move", "flags"}


def test_pc_boot_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import pc_boot

    pc_boot.main(smoke=True)
    doc = json.loads(capsys.readouterr().out)
    sim = doc["results"]["sim"]
    assert all(r["unchanged_bytes_unmapped"] == 0 for r in sim["ours_optimistic"])
    assert [r["ioctls"] for r in sim["ours_auto"]] == [6, 3, 4, 3]
    assert doc["results"]["summary"]["ioctls_qemu_like"] == 23


@pytest.mark.kvm
def test_overhead_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import overhead

    overhead.main(smoke=True)
    res = json.loads(capsys.readouterr().out)["results"]
    assert res["backend"] == "kvm"
    assert res["pc"]["ioctl_us_p50"] > 0 and res["pc"]["python_us_p50"] > 0
    assert res["1000"]["commits"] > 0


@pytest.mark.kvm
def test_vcpu_scaling_benchmark_smoke(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from benchmarks import vcpu_scaling

    png = tmp_path / "scaling.png"
    vcpu_scaling.main(smoke=True, plot=str(png))
    res = json.loads(capsys.readouterr().out)["results"]
    for n in ("1", "2"):
        for mode in ("auto", "optimistic", "quiesce"):
            assert res[n][mode]["faults"] == 0 and res[n][mode]["lost_writes"] == 0
        assert res[n]["optimistic"]["pauses"] == 0
    assert png.stat().st_size > 10_000


@pytest.mark.kvm
def test_race_soak_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import race_soak

    race_soak.main(smoke=True)
    res = json.loads(capsys.readouterr().out)["results"]
    assert res["ok"] is True
    assert res["naive"]["faults"] > 0
    assert res["auto"]["faults"] == res["optimistic"]["faults"] == 0
    assert 0 < res["auto"]["slots_to_qemu_style_max"] <= 2


def test_dump_diff_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import dump_diff

    dump_diff.main(smoke=True)
    rows = json.loads(capsys.readouterr().out)["results"]["rows"]
    assert [r["ranges"] for r in rows] == [500, 2000]
    assert all(r["diff_s"] > 0 and r["replay_peak_mb"] > 0 for r in rows)


def test_pci_enum_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import pci_enum

    pci_enum.main(smoke=True)
    res = json.loads(capsys.readouterr().out)["results"]
    assert [r["devices"] for r in res["rows"]] == [20, 50]
    assert res["targets"]["views_shared"] is True
    for r in res["rows"]:
        assert r["incremental"]["slots"] == r["full"]["slots"] > 0


@pytest.mark.kvm
def test_guest_cost_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import guest_cost

    guest_cost.main(smoke=True)
    doc = json.loads(capsys.readouterr().out)
    names = [c["name"] for c in doc["commits"]]
    assert len(names) == 7 and names[-1] == "BAR move"
    for c in doc["commits"]:
        assert isinstance(c["qemu_recreates_ram"], bool)
        for style in ("ours_auto", "ours_optimistic", "qemu_style"):
            assert set(c[style]) >= {"ioctl_us", "pause_us", "stall_us", "total_us"}
            assert c[style]["ioctl_us"] > 0
    assert [c["qemu_recreates_ram"] for c in doc["commits"]][:3] == [True, True, True]
    assert all(f == {"mismatch": 0, "mmio": 0, "stops": 0} for f in doc["faults"].values())
